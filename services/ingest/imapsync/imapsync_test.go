package imapsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/ownyou/home/services/ingest/imapsync/dovecottest"
)

type memSink struct {
	mu        sync.Mutex
	delivered []*Fetched
	failed    map[string]error
	cursor    Cursor
}

func (m *memSink) Deliver(_ context.Context, f *Fetched) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delivered = append(m.delivered, f)
	return nil
}
func (m *memSink) Failed(_ context.Context, folder string, v, uid uint32, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed == nil {
		m.failed = map[string]error{}
	}
	m.failed[fmt.Sprintf("%s/%d/%d", folder, v, uid)] = err
	return nil
}
func (m *memSink) Retries(_ context.Context, folder string, v uint32) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uint32
	for k := range m.failed {
		var f string
		var vv, uid uint32
		if _, err := fmt.Sscanf(strings.ReplaceAll(k, "/", " "), "%s %d %d", &f, &vv, &uid); err == nil && f == folder && vv == v {
			out = append(out, uid)
		}
	}
	return out, nil
}
func (m *memSink) Recovered(_ context.Context, folder string, v, uid uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failed, fmt.Sprintf("%s/%d/%d", folder, v, uid))
	return nil
}
func (m *memSink) SaveCursor(_ context.Context, c Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursor = Cursor{Folders: map[string]FolderCursor{}}
	for k, v := range c.Folders {
		m.cursor.Folders[k] = v
	}
	return nil
}
func (m *memSink) Progress(context.Context, Stats) error { return nil }

func mail(i int, pad int) string {
	return fmt.Sprintf("From: a@example.com\r\nTo: alice@example.com\r\nSubject: imap %d\r\nMessage-ID: <imap%d@example.com>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\nbody %d\r\n%s", i, i, i, strings.Repeat("x", pad))
}

// fill appends messages to folder (creating it) through a real IMAP session.
func fill(t *testing.T, srv *dovecottest.Server, folder string, msgs ...string) {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(srv.User, srv.Password).Wait(); err != nil {
		t.Fatalf("login: %v\n%s", err, srv.Logs())
	}
	if folder != "INBOX" {
		c.Create(folder, nil).Wait() // exists already is fine
	}
	for _, m := range msgs {
		cmd := c.Append(folder, int64(len(m)), nil)
		if _, err := cmd.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := cmd.Wait(); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
}

func cfgFor(srv *dovecottest.Server) Config {
	return Config{Addr: srv.Addr, Security: SecurityNone, Username: srv.User, Password: srv.Password, BatchSize: 4}
}

func TestIMAPSyncAgainstDovecot(t *testing.T) {
	srv := dovecottest.Start(t)
	var first []string
	for i := 0; i < 10; i++ {
		first = append(first, mail(i, 0))
	}
	fill(t, srv, "INBOX", first...)
	fill(t, srv, "Archive", mail(100, 0), mail(101, 0))
	ctx := context.Background()

	t.Run("first sync delivers all mail of the default folder", func(t *testing.T) {
		sink := &memSink{}
		st, err := Sync(ctx, cfgFor(srv), Cursor{}, sink, nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, srv.Logs())
		}
		if st.Delivered != 10 || len(sink.delivered) != 10 {
			t.Fatalf("stats %+v", st)
		}
		fc := sink.cursor.Folders["INBOX"]
		if fc.LastUID != 10 || fc.UIDValidity == 0 {
			t.Fatalf("cursor %+v", fc)
		}
		if !strings.Contains(string(sink.delivered[3].Raw), "Subject: imap 3") || sink.delivered[3].InternalDate.IsZero() {
			t.Fatalf("raw/internal date wrong: %q", sink.delivered[3].Raw)
		}
	})

	t.Run("incremental sync fetches only new UIDs", func(t *testing.T) {
		sink := &memSink{}
		_, err := Sync(ctx, cfgFor(srv), Cursor{}, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, srv, "INBOX", mail(10, 0), mail(11, 0))
		sink2 := &memSink{}
		st, err := Sync(ctx, cfgFor(srv), sink.cursor, sink2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Delivered != 2 || !strings.Contains(string(sink2.delivered[0].Raw), "imap 10") {
			t.Fatalf("stats %+v", st)
		}
		// Nothing new: nothing delivered, cursor unchanged.
		sink3 := &memSink{cursor: sink2.cursor}
		st, err = Sync(ctx, cfgFor(srv), sink2.cursor, sink3, nil)
		if err != nil || st.Delivered != 0 {
			t.Fatalf("idle sync: %+v %v", st, err)
		}
	})

	t.Run("selected folders are all synced", func(t *testing.T) {
		cfg := cfgFor(srv)
		cfg.Folders = []string{"INBOX", "Archive"}
		sink := &memSink{}
		st, err := Sync(ctx, cfg, Cursor{}, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Folders != 2 || sink.cursor.Folders["Archive"].LastUID != 2 {
			t.Fatalf("stats %+v cursor %+v", st, sink.cursor)
		}
	})

	t.Run("missing folder is an error", func(t *testing.T) {
		cfg := cfgFor(srv)
		cfg.Folders = []string{"NoSuchFolder"}
		if _, err := Sync(ctx, cfg, Cursor{}, &memSink{}, nil); err == nil {
			t.Fatal("want error")
		}
	})

	t.Run("changed UIDVALIDITY resyncs the folder", func(t *testing.T) {
		sink := &memSink{}
		stale := Cursor{Folders: map[string]FolderCursor{"INBOX": {UIDValidity: 1, LastUID: 500}}}
		st, err := Sync(ctx, cfgFor(srv), stale, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Resets != 1 || st.Delivered < 10 || sink.cursor.Folders["INBOX"].UIDValidity == 1 {
			t.Fatalf("stats %+v cursor %+v", st, sink.cursor)
		}
	})

	t.Run("oversized message is recorded and skipped without blocking the cursor", func(t *testing.T) {
		fill(t, srv, "Big", mail(200, 0), mail(201, 50_000), mail(202, 0))
		cfg := cfgFor(srv)
		cfg.Folders = []string{"Big"}
		cfg.MaxSize = 10_000
		sink := &memSink{}
		st, err := Sync(ctx, cfg, Cursor{}, sink, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Delivered != 2 || st.Failed != 1 || sink.cursor.Folders["Big"].LastUID != 3 {
			t.Fatalf("stats %+v cursor %+v", st, sink.cursor)
		}
		for _, e := range sink.failed {
			if !errors.Is(e, ErrTooLarge) {
				t.Fatalf("failure %v, want ErrTooLarge", e)
			}
		}
		// With a larger cap the recorded failure is retried and recovered.
		cfg.MaxSize = 1 << 20
		st, err = Sync(ctx, cfg, sink.cursor, sink, nil)
		if err != nil || st.Recovered != 1 || len(sink.failed) != 0 {
			t.Fatalf("retry: stats %+v err %v failed %v", st, err, sink.failed)
		}
	})

	t.Run("XOAUTH2 with a valid token logs in", func(t *testing.T) {
		srv.AddToken("good-token")
		cfg := cfgFor(srv)
		cfg.Password = ""
		cfg.Token = func(context.Context) (string, error) { return "good-token", nil }
		sink := &memSink{}
		if _, err := Sync(ctx, cfg, Cursor{}, sink, nil); err != nil {
			t.Fatalf("%v\n%s", err, srv.Logs())
		}
		if len(sink.delivered) < 10 {
			t.Fatalf("delivered %d", len(sink.delivered))
		}
	})

	t.Run("wrong password is ErrAuth", func(t *testing.T) {
		cfg := cfgFor(srv)
		cfg.Password = "wrong"
		if _, err := Sync(ctx, cfg, Cursor{}, &memSink{}, nil); !errors.Is(err, ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	})

	t.Run("XOAUTH2 with a bad token is ErrAuth", func(t *testing.T) {
		cfg := cfgFor(srv)
		cfg.Token = func(context.Context) (string, error) { return "bad-token", nil }
		if _, err := Sync(ctx, cfg, Cursor{}, &memSink{}, nil); !errors.Is(err, ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	})
}
