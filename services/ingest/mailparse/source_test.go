package mailparse

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, r Reader) []*RawMessage {
	t.Helper()
	var out []*RawMessage
	for {
		m, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, m)
	}
}

func TestMboxReader(t *testing.T) {
	takeout := "From 1781234567890123456@xxx Wed Mar 04 10:15:22 +0000 2026\n" +
		"X-GM-THRID: 1781234567890123456\nX-Gmail-Labels: Inbox,Important\nFrom: a@x.com\nSubject: one\n\nline\n>From the escaped line\n>>From double\n\n" +
		"From 1781234567890123457@xxx Thu Mar 05 11:00:00 +0000 2026\nFrom: b@x.com\nSubject: two\n\nsecond\n"
	tests := []struct {
		name      string
		in        string
		opts      ReaderOptions
		wantN     int
		wantBody  []string // substring expected in each message's raw, by index
		wantDate0 time.Time
		wantErrAt int // index of a message that must carry ErrTooLarge, -1 none
	}{
		{name: "takeout mbox splits and unescapes mboxrd", in: takeout, wantN: 2,
			wantBody:  []string{"line\nFrom the escaped line\n>From double\n", "Subject: two\n\nsecond\n"},
			wantDate0: time.Date(2026, 3, 4, 10, 15, 22, 0, time.UTC), wantErrAt: -1},
		{name: "mboxo keeps double-quoted From", in: takeout, opts: ReaderOptions{MboxO: true}, wantN: 2,
			wantBody: []string{"From the escaped line\n>>From double\n"}, wantErrAt: -1},
		{name: "CRLF mbox splits and drops separator blank line", in: strings.ReplaceAll("From x@y Mon Jan  2 15:04:05 2006\nSubject: a\n\nA\n\nFrom x@y Mon Jan  2 15:04:06 2006\nSubject: b\n\nB\n", "\n", "\r\n"), wantN: 2,
			wantBody: []string{"Subject: a\r\n\r\nA\r\n", "Subject: b\r\n\r\nB\r\n"}, wantDate0: time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC), wantErrAt: -1},
		{name: "file without From line is one message", in: "Subject: bare\n\nbody\n", wantN: 1, wantBody: []string{"Subject: bare\n\nbody\n"}, wantErrAt: -1},
		{name: "empty file has no messages", in: "", wantN: 0, wantErrAt: -1},
		{name: "oversized message is skipped with error and the next one survives",
			in:   "From a@b Mon Jan  2 15:04:05 2006\nSubject: big\n\n" + strings.Repeat(strings.Repeat("x", 100)+"\n", 100) + "\nFrom a@b Mon Jan  2 15:04:05 2006\nSubject: small\n\nok\n",
			opts: ReaderOptions{MaxSize: 1000}, wantN: 2, wantBody: []string{"", "Subject: small\n\nok\n"}, wantErrAt: 0},
		{name: "huge single line beyond buffer is kept whole", in: "From a@b Mon Jan  2 15:04:05 2006\nX: " + strings.Repeat("y", 200000) + "\n\nbody\n", wantN: 1,
			wantBody: []string{strings.Repeat("y", 200000) + "\n\nbody\n"}, wantErrAt: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewMboxReader(strings.NewReader(tc.in), tc.opts)
			msgs := readAll(t, r)
			if len(msgs) != tc.wantN {
				t.Fatalf("got %d messages, want %d", len(msgs), tc.wantN)
			}
			for i, want := range tc.wantBody {
				if i == tc.wantErrAt {
					continue
				}
				if !strings.HasSuffix(string(msgs[i].Raw), want) && !strings.Contains(string(msgs[i].Raw), want) {
					t.Errorf("msg %d raw = %q, want %q", i, msgs[i].Raw, want)
				}
				if i < len(msgs)-1 && (strings.HasSuffix(string(msgs[i].Raw), "\n\n") || strings.HasSuffix(string(msgs[i].Raw), "\r\n\r\n")) {
					t.Errorf("msg %d keeps the separator blank line", i)
				}
			}
			if tc.wantErrAt >= 0 {
				m := msgs[tc.wantErrAt]
				if !errors.Is(m.Err, ErrTooLarge) || m.Raw != nil || m.Size <= 1000 {
					t.Errorf("msg %d: err=%v raw=%d size=%d, want ErrTooLarge without raw", tc.wantErrAt, m.Err, len(m.Raw), m.Size)
				}
			}
			if !tc.wantDate0.IsZero() && !msgs[0].EnvelopeDate.Equal(tc.wantDate0) {
				t.Errorf("EnvelopeDate = %v, want %v", msgs[0].EnvelopeDate, tc.wantDate0)
			}
			if r.BytesRead() != int64(len(tc.in)) {
				t.Errorf("BytesRead = %d, want %d", r.BytesRead(), len(tc.in))
			}
		})
	}
}

func TestMboxOffsetsPointAtFromLines(t *testing.T) {
	in := "From a Mon Jan  2 15:04:05 2006\nS: 1\n\nx\n\nFrom b Mon Jan  2 15:04:05 2006\nS: 2\n\ny\n"
	msgs := readAll(t, NewMboxReader(strings.NewReader(in), ReaderOptions{}))
	for _, m := range msgs {
		if !strings.HasPrefix(in[m.Offset:], "From ") {
			t.Errorf("offset %d does not point at a From line", m.Offset)
		}
	}
}

func TestSameMailFromTakeoutAndRawDedupes(t *testing.T) {
	raw := "Received: from mx.google.com; Tue, 03 Mar 2026 10:00:01 +0000\r\nFrom: Alice <alice@example.com>\r\nTo: bob@example.org\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\nSubject: Same\r\n\r\nFrom here on the body\r\nsame text\r\n"
	mbox := "From 1@xxx Tue Mar 03 10:00:00 +0000 2026\nX-GM-THRID: 1\nX-Gmail-Labels: Inbox\n" + strings.ReplaceAll(strings.Replace(raw, "\r\nFrom here", "\r\n>From here", 1), "\r\n", "\n")
	a, err := Parse([]byte(raw), Options{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := readAll(t, NewMboxReader(strings.NewReader(mbox), ReaderOptions{}))
	b, err := Parse(msgs[0].Raw, Options{FallbackDate: msgs[0].EnvelopeDate})
	if err != nil {
		t.Fatal(err)
	}
	if a.ContentHash != b.ContentHash || a.MessageID != b.MessageID {
		t.Fatalf("same mail hashed differently: %s/%s vs %s/%s\n%q\n%q", a.MessageID, a.ContentHash, b.MessageID, b.ContentHash, a.Text, b.Text)
	}
	c, _ := Parse([]byte(strings.Replace(raw, "same text", "other text", 1)), Options{})
	if c.ContentHash == a.ContentHash {
		t.Fatal("different mail hashed equal")
	}
}

func TestZipAndEMLReaders(t *testing.T) {
	dir := t.TempDir()
	zpath := filepath.Join(dir, "mails.zip")
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for name, body := range map[string]string{
		"a/1.eml":   "Subject: one\r\n\r\nfirst\r\n",
		"a/2.EML":   "Subject: two\r\n\r\nsecond\r\n",
		"notes.txt": "ignored",
		"big/3.eml": "Subject: big\r\n\r\n" + strings.Repeat("z", 5000),
		"empty.eml": "",
	} {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	zw.Close()
	os.WriteFile(zpath, zb.Bytes(), 0o600)
	r, kind, c, err := OpenFile(zpath, ReaderOptions{MaxSize: 1000})
	if err != nil || kind != KindZip {
		t.Fatalf("OpenFile: %v %v", kind, err)
	}
	defer c.Close()
	msgs := readAll(t, r)
	if len(msgs) != 4 {
		t.Fatalf("got %d entries, want 4 .eml", len(msgs))
	}
	var tooLarge, ok int
	for _, m := range msgs {
		switch {
		case errors.Is(m.Err, ErrTooLarge):
			tooLarge++
		case m.Err == nil:
			ok++
		}
	}
	if tooLarge != 1 || ok != 3 {
		t.Fatalf("tooLarge=%d ok=%d, want 1 and 3", tooLarge, ok)
	}
	if r.BytesRead() == 0 {
		t.Error("no progress reported")
	}

	epath := filepath.Join(dir, "one.eml")
	os.WriteFile(epath, []byte("Subject: e\r\n\r\nbody\r\n"), 0o600)
	er, kind, c2, err := OpenFile(epath, ReaderOptions{})
	if err != nil || kind != KindEML {
		t.Fatalf("OpenFile eml: %v %v", kind, err)
	}
	defer c2.Close()
	em := readAll(t, er)
	if len(em) != 1 || string(em[0].Raw) != "Subject: e\r\n\r\nbody\r\n" {
		t.Fatalf("eml = %+v", em)
	}
}

func TestLargeMboxStreamsWithBoundedMemory(t *testing.T) {
	// 200 MB of mbox through the reader while holding one message at a time:
	// a regression to whole-file buffering would show as heap growth.
	if testing.Short() {
		t.Skip("large")
	}
	msg := "From a@b Mon Jan  2 15:04:05 2006\nSubject: s\n\n" + strings.Repeat("0123456789", 10000) + "\n\n"
	const n = 2000
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < n; i++ {
			pw.Write([]byte(msg))
		}
		pw.Close()
	}()
	r := NewMboxReader(pr, ReaderOptions{})
	count := 0
	var peak uint64
	var ms runtime.MemStats
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil || m.Err != nil {
			t.Fatal(err, m.Err)
		}
		count++
		if count%200 == 0 {
			runtime.GC() // measure live heap, not garbage awaiting collection
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if peak > 16<<20 {
		t.Errorf("live heap reached %d MB while streaming", peak>>20)
	}
	if count != n {
		t.Fatalf("count = %d", count)
	}
}

func TestSyntheticMboxRoundTrips(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSyntheticMbox(&b, 200, 1); err != nil {
		t.Fatal(err)
	}
	msgs := readAll(t, NewMboxReader(&b, ReaderOptions{}))
	if len(msgs) != 200 {
		t.Fatalf("got %d messages, want 200", len(msgs))
	}
	for i, rm := range msgs {
		m, err := Parse(rm.Raw, Options{FallbackDate: rm.EnvelopeDate})
		if err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
		if m.MessageIDSynthesized || m.Text == "" || m.DateSource != DateFromHeader {
			t.Fatalf("msg %d parsed badly: %+v", i, m)
		}
		if strings.Contains(m.Text, "track()") {
			t.Fatalf("msg %d: script leaked into text", i)
		}
	}
}
