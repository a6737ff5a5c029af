package mailparse

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/services/ingest/mailparse/tnef"
)

// crlf turns a readable LF literal into wire-format CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

const stdHead = "From: Alice Example <alice@example.com>\nTo: bob@example.org\nDate: Tue, 03 Mar 2026 10:00:00 +0000\nMessage-ID: <m1@example.com>\n"

// uglyCase is one corpus entry: the raw message and what must come out.
type uglyCase struct {
	name        string
	raw         func() []byte
	opts        Options
	wantErr     error      // sentinel the ParseError must wrap; nil means success
	wantText    []string   // substrings Text must contain
	notText     []string   // substrings Text must not contain
	wantSubject string     // exact subject, when set
	wantFrom    string     // From.Addr, when set
	wantDateSrc DateSource // when set
	wantAttach  int        // number of attachments; -1 means don't check
	wantWarn    string     // substring of some warning, when set
	wantSynthID bool       // Message-ID must be synthesized
}

// tnefMail is an Outlook-style message whose winmail.dat holds a body and
// two files; mimeText, when set, is the message's own text/plain part.
func tnefMail(mimeText string) func() []byte {
	return func() []byte {
		var b tnef.Builder
		b.Attr(0x01, 0x00078008, []byte("IPM.Microsoft Mail.Note\x00"))
		b.Attr(0x01, 0x0002800C, []byte("Body inside winmail.dat\x00"))
		b.Attachment("budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", bytes.Repeat([]byte{7}, 300))
		b.Attachment("minutes.pdf", "", bytes.Repeat([]byte{8}, 120))
		var out strings.Builder
		out.WriteString(stdHead + "Subject: t\nContent-Type: multipart/mixed; boundary=t\n\n")
		if mimeText != "" {
			out.WriteString("--t\nContent-Type: text/plain\n\n" + mimeText + "\n")
		}
		out.WriteString("--t\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Disposition: attachment; filename=\"winmail.dat\"\nContent-Transfer-Encoding: base64\n\n")
		out.WriteString(base64.StdEncoding.EncodeToString(b.Bytes()) + "\n--t--\n")
		return []byte(crlf(out.String()))
	}
}

// tnefRTFMail is an Outlook message whose only body is the compressed RTF
// inside its winmail.dat.
func tnefRTFMail() func() []byte {
	return func() []byte {
		var b tnef.Builder
		b.Attr(0x01, 0x00069003, tnef.PropList(tnef.BinaryProp(0x1009, tnef.CompressRTF(`{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Calibri;}}\pard Agenda: budget review\par}`))))
		raw := stdHead + "Subject: rtf\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Disposition: attachment; filename=\"winmail.dat\"\nContent-Transfer-Encoding: base64\n\n" +
			base64.StdEncoding.EncodeToString(b.Bytes()) + "\n"
		return []byte(crlf(raw))
	}
}

func s(raw string) func() []byte { return func() []byte { return []byte(raw) } }

func bigAttachment(n int) func() []byte {
	return func() []byte {
		var b bytes.Buffer
		b.WriteString(crlf(stdHead + "Subject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nsee attached\n--XX\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"big.bin\"\nContent-Transfer-Encoding: base64\n\n"))
		chunk := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xAB}, 57))
		for i := 0; i < n/57; i++ {
			b.WriteString(chunk)
			b.WriteString("\r\n")
		}
		b.WriteString("--XX--\r\n")
		return b.Bytes()
	}
}

func uglyCorpus() []uglyCase {
	return []uglyCase{
		{name: "plain ascii message yields text and header fields", raw: s(crlf(stdHead + "Subject: Hello\n\nHi Bob,\nlunch?\n")),
			wantText: []string{"Hi Bob,\nlunch?"}, wantSubject: "Hello", wantFrom: "alice@example.com", wantDateSrc: DateFromHeader},
		{name: "LF-only line endings parse the same", raw: s(stdHead + "Subject: lf\n\nbody with lf\n"),
			wantText: []string{"body with lf"}, wantSubject: "lf"},
		{name: "missing Message-ID is synthesized from content hash", raw: s("From: a@x.com\nSubject: no id\nDate: Tue, 03 Mar 2026 10:00:00 +0000\n\nbody\n"),
			wantText: []string{"body"}, wantSynthID: true},
		{name: "missing Date falls back to Received header", raw: s("From: a@x.com\nReceived: from mx by mx2; Wed, 04 Mar 2026 11:22:33 +0100\nSubject: r\n\nbody\n"),
			wantDateSrc: DateFromReceived, wantText: []string{"body"}},
		{name: "garbage Date falls back to fallback date with warning", raw: s("From: a@x.com\nDate: yesterday-ish\nSubject: d\n\nbody\n"),
			opts: Options{FallbackDate: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)}, wantDateSrc: DateFromFallback, wantWarn: "unparseable Date"},
		{name: "no date anywhere is marked missing", raw: s("From: a@x.com\nSubject: d\n\nbody\n"), wantDateSrc: DateMissing, wantWarn: "no usable date"},
		{name: "sloppy date with comment and single digit day parses", raw: s("From: a@x.com\nDate: Tue, 3 Mar 2026 10:00:00 -0800 (PST)\n\nx\n"), wantDateSrc: DateFromHeader},
		{name: "missing From gives warning and empty sender", raw: s("To: b@x.com\nSubject: anon\n\nwho sent me\n"), wantText: []string{"who sent me"}, wantWarn: "missing From"},
		{name: "Sender used when From missing", raw: s("Sender: list@x.com\nSubject: s\n\nhi\n"), wantFrom: "list@x.com"},
		{name: "no headers at all still yields body", raw: s("\njust a body line\n"), wantText: []string{"just a body line"}, wantSynthID: true},
		{name: "headers only with 0-byte body warns empty body", raw: s(crlf(stdHead + "Subject: empty\n\n")), wantWarn: "empty body", wantSubject: "empty"},
		{name: "0-byte message is ErrEmpty", raw: s(""), wantErr: ErrEmpty},
		{name: "whitespace-only message is ErrEmpty", raw: s("\r\n\r\n  \r\n"), wantErr: ErrEmpty},
		{name: "RFC2047 Q-encoded latin1 subject decodes", raw: s(stdHead + "Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\n\nx\n"), wantSubject: "Café crème"},
		{name: "RFC2047 B-encoded UTF-8 subject decodes", raw: s(stdHead + "Subject: =?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=\n\nx\n"), wantSubject: "日本語の件名"},
		{name: "raw 8-bit latin1 subject is read as windows-1252", raw: s(stdHead + "Subject: Gr\xfc\xdfe aus K\xf6ln\n\nx\n"), wantSubject: "Grüße aus Köln", wantWarn: "windows-1252"},
		{name: "unknown charset in encoded word keeps message", raw: s(stdHead + "Subject: =?x-unknown-42?Q?abc?=\n\nbody ok\n"), wantText: []string{"body ok"}},
		{name: "ISO-8859-1 body converts to UTF-8", raw: s(stdHead + "Subject: c\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nd\xe9j\xe0 vu\n"), wantText: []string{"déjà vu"}},
		{name: "windows-1251 cyrillic body converts", raw: s(stdHead + "Subject: c\nContent-Type: text/plain; charset=windows-1251\n\n\xcf\xf0\xe8\xe2\xe5\xf2\n"), wantText: []string{"Привет"}},
		{name: "Shift_JIS body converts", raw: s(stdHead + "Subject: j\nContent-Type: text/plain; charset=Shift_JIS\n\n\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd\n"), wantText: []string{"こんにちは"}},
		{name: "bogus charset label keeps readable text", raw: s(stdHead + "Subject: c\nContent-Type: text/plain; charset=\"utf-99\"\n\nplain ascii survives\n"), wantText: []string{"plain ascii survives"}},
		{name: "mislabelled utf-8 as us-ascii with invalid bytes never yields invalid UTF-8", raw: s(stdHead + "Subject: c\nContent-Type: text/plain; charset=us-ascii\n\nbad \xff\xfe bytes\n"), wantText: []string{"bad", "bytes"}},
		{name: "quoted-printable soft breaks join", raw: s(stdHead + "Subject: qp\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nlong=\n line =C3=A9t=C3=A9\n"), wantText: []string{"long line été"}},
		{name: "broken quoted-printable keeps text", raw: s(stdHead + "Subject: qp\nContent-Transfer-Encoding: quoted-printable\n\nbad =ZZ escape =\n"), wantText: []string{"bad"}},
		{name: "valid base64 body decodes", raw: s(stdHead + "Subject: b64\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + base64.StdEncoding.EncodeToString([]byte("decoded text here")) + "\n"), wantText: []string{"decoded text here"}},
		{name: "bad base64 body keeps partial text with warning", raw: s(stdHead + "Subject: b64\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=!!!***not base64***\n"), wantWarn: "Base64"},
		{name: "bad base64 attachment is recorded not fatal", raw: s(crlf(stdHead + "Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nbody text\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\n%%%%not-base64%%%%\n--b--\n")),
			wantText: []string{"body text"}, wantAttach: -1},
		{name: "HTML-only message converts to text without script or style", raw: s(stdHead + "Subject: h\nContent-Type: text/html; charset=utf-8\n\n<html><head><style>.x{color:red}</style><script>alert('x')</script></head><body><p>Hello <b>there</b></p><p>Second&nbsp;para &amp; more</p></body></html>\n"),
			wantText: []string{"Hello there", "Second para & more"}, notText: []string{"alert", "color:red"}},
		{name: "HTML with charset only in meta tag converts", raw: s(stdHead + "Subject: h\nContent-Type: text/html\n\n<html><head><meta charset=\"iso-8859-1\"></head><body>na\xefve</body></html>\n"), wantText: []string{"naïve"}},
		{name: "multipart alternative prefers text/plain", raw: s(crlf(stdHead + "Subject: alt\nContent-Type: multipart/alternative; boundary=\"alt\"\n\n--alt\nContent-Type: text/plain; charset=utf-8\n\nthe plain version\n--alt\nContent-Type: text/html; charset=utf-8\n\n<p>the html version</p>\n--alt--\n")),
			wantText: []string{"the plain version"}, notText: []string{"html version"}},
		{name: "nested multiparts find text and attachments", raw: s(crlf(stdHead + "Subject: nest\nContent-Type: multipart/mixed; boundary=\"m1\"\n\n--m1\nContent-Type: multipart/related; boundary=\"m2\"\n\n--m2\nContent-Type: multipart/alternative; boundary=\"m3\"\n\n--m3\nContent-Type: text/plain\n\ndeep plain\n--m3\nContent-Type: text/html\n\n<b>deep html</b>\n--m3--\n--m2\nContent-Type: image/png\nContent-ID: <img1>\nContent-Disposition: inline; filename=\"logo.png\"\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--m2--\n--m1\nContent-Type: application/pdf; name=\"report.pdf\"\nContent-Disposition: attachment; filename=\"report.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQ=\n--m1--\n")),
			wantText: []string{"deep plain"}, wantAttach: 2},
		{name: "multipart without boundary is read as a single part", raw: s(stdHead + "Subject: nb\nContent-Type: multipart/mixed\n\nsome text without boundary\n"), wantText: []string{"some text without boundary"}},
		{name: "unterminated multipart still yields text", raw: s(crlf(stdHead + "Subject: u\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\nContent-Type: text/plain\n\ncut off here\n")), wantText: []string{"cut off here"}},
		{name: "multipart with empty parts yields empty text", raw: s(crlf(stdHead + "Subject: e\nContent-Type: multipart/mixed; boundary=zz\n\n--zz\n\n--zz--\n")), wantAttach: -1},
		{name: "garbage content-type falls back to text", raw: s(stdHead + "Subject: g\nContent-Type: ;;;===;;\n\nstill text\n"), wantText: []string{"still text"}},
		{name: "TNEF winmail.dat lists the files inside it", raw: tnefMail("outlook body"), wantText: []string{"outlook body"}, wantAttach: 2},
		{name: "TNEF winmail.dat without a MIME text part gives its body as text", raw: tnefMail(""), wantText: []string{"Body inside winmail.dat"}, wantAttach: 2},
		{name: "TNEF winmail.dat with only a compressed RTF body gives its text", raw: tnefRTFMail(), wantText: []string{"Agenda: budget review"}, wantAttach: -1},
		{name: "truncated TNEF winmail.dat is kept as attachment metadata with a warning", wantWarn: "winmail.dat kept undecoded", raw: s(crlf(stdHead + "Subject: t\nContent-Type: multipart/mixed; boundary=t\n\n--t\nContent-Type: text/plain\n\noutlook body\n--t\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\nContent-Disposition: attachment; filename=\"winmail.dat\"\nContent-Transfer-Encoding: base64\n\neJ8+IhAAAQaQCAAEAAAAAAABAAEAAQeQBgAIAAAA5AQAAAAAAADoAAEIgAcAGAAAAElQTS5NaWNyb3NvZnQgTWFpbC5Ob3RlADEIAQ2ABAACAAAAAgACAAEEgAEAAQAAAA==\n--t--\n")),
			wantText: []string{"outlook body"}, wantAttach: 1},
		{name: "huge header line does not break parsing", raw: func() []byte {
			return []byte(stdHead + "X-Huge: " + strings.Repeat("a", 300000) + "\nSubject: huge\n\nafter huge header\n")
		}, wantText: []string{"after huge header"}, wantSubject: "huge"},
		{name: "thousands of headers parse", raw: func() []byte {
			var b strings.Builder
			b.WriteString(stdHead)
			for i := 0; i < 5000; i++ {
				fmt.Fprintf(&b, "X-H%d: v\n", i)
			}
			b.WriteString("Subject: many\n\nbody after many\n")
			return []byte(b.String())
		}, wantText: []string{"body after many"}},
		{name: "folded subject unfolds to one line", raw: s(stdHead + "Subject: a very\n long\n\tsubject\n\nx\n"), wantSubject: "a very long subject"},
		{name: "unparseable address list falls back to loose addresses", raw: s("From: \"broken <<< alice@example.com\nTo: ;;;, bob@example.org ,,,\nSubject: a\n\nx\n"), wantWarn: "unparseable address"},
		{name: "encoded display name decodes", raw: s("From: =?UTF-8?Q?J=C3=BCrgen?= <jurgen@example.de>\nSubject: n\n\nx\n"), wantFrom: "jurgen@example.de"},
		{name: "uppercase address is lowercased", raw: s("From: BOSS@Example.COM\nSubject: n\n\nx\n"), wantFrom: "boss@example.com"},
		{name: "Message-ID without brackets is accepted", raw: s("From: a@x.com\nMessage-ID: bare-id@x.com\n\nx\n"), wantText: []string{"x"}},
		{name: "attachment with encoded filename decodes", raw: s(crlf(stdHead + "Subject: f\nContent-Type: multipart/mixed; boundary=f\n\n--f\nContent-Type: text/plain\n\nsee file\n--f\nContent-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''R%C3%A9sum%C3%A9.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQ=\n--f--\n")),
			wantAttach: 1},
		{name: "HTML bomb is bounded and flagged truncated", raw: func() []byte {
			return []byte(stdHead + "Subject: bomb\nContent-Type: text/html\n\n" + strings.Repeat("<div><span>boom ", 400000) + "\n")
		}, opts: Options{MaxHTMLBytes: 1 << 20, MaxTextBytes: 64 << 10}, wantText: []string{"boom"}, wantWarn: "truncated"},
		{name: "script-only HTML yields empty text", raw: s(stdHead + "Subject: s\nContent-Type: text/html\n\n<script>var a = 1; document.write('x')</script>\n"), notText: []string{"document"}},
		{name: "message/rfc822 attachment keeps outer text", raw: s(crlf(stdHead + "Subject: fwd\nContent-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\nforwarding this\n--o\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=\"fwd.eml\"\n\nFrom: c@x.com\nSubject: inner\n\ninner body\n--o--\n")),
			wantText: []string{"forwarding this"}},
		{name: "NUL bytes in body do not crash", raw: s(stdHead + "Subject: nul\n\nbefore\x00\x00after\n"), wantText: []string{"before"}},
		{name: "message over the size cap is ErrTooLarge", raw: func() []byte { return bytes.Repeat([]byte("a"), 2048) }, opts: Options{MaxSize: 1024}, wantErr: ErrTooLarge},
		{name: "30 MB attachment exceeds default cap with recorded error", raw: bigAttachment(30 << 20), wantErr: ErrTooLarge},
		{name: "20 MB attachment under the cap is kept as metadata", raw: bigAttachment(15 << 20), wantText: []string{"see attached"}, wantAttach: 1},
	}
}

func TestUglyCorpus(t *testing.T) {
	cases := uglyCorpus()
	if len(cases) < 40 {
		t.Fatalf("corpus has %d cases, want >= 40", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw()
			m, err := Parse(raw, tc.opts)
			if tc.wantErr != nil {
				var pe *ParseError
				if !errors.Is(err, tc.wantErr) || !errors.As(err, &pe) {
					t.Fatalf("err = %v, want ParseError wrapping %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if m.MessageID == "" || len(m.ContentHash) != 64 {
				t.Fatalf("missing id/hash: %q %q", m.MessageID, m.ContentHash)
			}
			if m.Size != int64(len(raw)) {
				t.Errorf("Size = %d, want %d", m.Size, len(raw))
			}
			for _, f := range []string{m.Text, m.HTML, m.Subject, m.From.Name} {
				if !isValidUTF8(f) {
					t.Errorf("invalid UTF-8 in output %q", f)
				}
			}
			for _, w := range tc.wantText {
				if !strings.Contains(m.Text, w) {
					t.Errorf("Text = %q, want it to contain %q", trunc(m.Text), w)
				}
			}
			for _, w := range tc.notText {
				if strings.Contains(m.Text, w) {
					t.Errorf("Text = %q, must not contain %q", trunc(m.Text), w)
				}
			}
			if tc.wantSubject != "" && m.Subject != tc.wantSubject {
				t.Errorf("Subject = %q, want %q", m.Subject, tc.wantSubject)
			}
			if tc.wantFrom != "" && m.From.Addr != tc.wantFrom {
				t.Errorf("From = %q, want %q", m.From.Addr, tc.wantFrom)
			}
			if tc.wantDateSrc != "" && m.DateSource != tc.wantDateSrc {
				t.Errorf("DateSource = %q, want %q (warnings %v)", m.DateSource, tc.wantDateSrc, m.Warnings)
			}
			if tc.wantAttach > 0 && len(m.Attachments) != tc.wantAttach {
				t.Errorf("attachments = %+v, want %d", m.Attachments, tc.wantAttach)
			}
			if tc.wantWarn != "" && !hasWarning(m, tc.wantWarn) {
				t.Errorf("warnings = %v, want one containing %q", m.Warnings, tc.wantWarn)
			}
			if tc.wantSynthID != m.MessageIDSynthesized && tc.wantSynthID {
				t.Errorf("MessageIDSynthesized = %v, want true", m.MessageIDSynthesized)
			}
		})
	}
}

func hasWarning(m *Message, sub string) bool {
	for _, w := range m.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func TestUndeclaredLatin1BodyIsRepaired(t *testing.T) {
	m, err := Parse([]byte(stdHead+"Subject: x\n\nna\xefve caf\xe9\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Text, "naïve café") {
		t.Fatalf("Text = %q", m.Text)
	}
}

func TestTNEFAttachmentsKeepNameTypeAndSize(t *testing.T) {
	m, err := Parse(tnefMail("x")(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Attachment{
		{Name: "budget.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Size: 300},
		{Name: "minutes.pdf", ContentType: "application/pdf", Size: 120},
	}
	if len(m.Attachments) != len(want) {
		t.Fatalf("attachments = %+v, want %+v", m.Attachments, want)
	}
	for i := range want {
		if m.Attachments[i] != want[i] {
			t.Errorf("attachment %d = %+v, want %+v", i, m.Attachments[i], want[i])
		}
	}
}
