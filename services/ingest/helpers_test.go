package ingest

import (
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/services/ingest/imapsync/dovecottest"
)

func jetstreamSubjects(filter string) jetstream.StreamInfoOpt {
	return jetstream.WithSubjectFilter(filter)
}

func jetstreamMeta(name string) jetstream.ObjectMeta { return jetstream.ObjectMeta{Name: name} }

func splitHostPort(t *testing.T, addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func fillIMAP(t *testing.T, srv *dovecottest.Server, n int) {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(srv.User, srv.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		m := fmt.Sprintf("From: friend@example.com\r\nSubject: imap %d\r\nMessage-ID: <svc-imap-%d@x>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\nhello %d\r\n", i, i, i)
		cmd := c.Append("INBOX", int64(len(m)), nil)
		cmd.Write([]byte(m))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	}
}
