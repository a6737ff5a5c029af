package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/ingest/imapsync/dovecottest"
)

// imapOAuthSource creates an IMAP source with auth xoauth2 against srv,
// holding grant (sealed like the gateway does).
func imapOAuthSource(t *testing.T, e *env, srv *dovecottest.Server, id string, g googleoauth.Grant) {
	t.Helper()
	host, port := splitHostPort(t, srv.Addr)
	cfg, _ := json.Marshal(map[string]any{"host": host, "port": port, "security": "none", "username": srv.User, "auth": "xoauth2"})
	plain, _ := json.Marshal(g)
	sealed, err := e.svc.SealSecret(id, plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateSource(context.Background(), store.Source{ID: id, Kind: store.SourceIMAP, Account: id, Config: cfg}, sealed); err != nil {
		t.Fatal(err)
	}
}

// storedGrant decrypts the source's stored grant.
func storedGrant(t *testing.T, e *env, id string) (googleoauth.Grant, []byte) {
	t.Helper()
	sealed, err := e.db.SourceSecret(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.svc.box.Open(sealed, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	var g googleoauth.Grant
	if err := json.Unmarshal(plain, &g); err != nil {
		t.Fatal(err)
	}
	return g, sealed
}

// Dovecot's oauth2 passdb checks each XOAUTH2 access token at an
// introspection URL served by dovecottest, which asks the fake token
// endpoint whether it issued the token: the whole refresh → login path is real.
func TestIMAPXOAuth2SourceRefreshesPersistsAndNeedsReconnectWhenRevoked(t *testing.T) {
	srv := dovecottest.Start(t)
	fillIMAP(t, srv, 4)
	of := oauthfake.New("imap-client", "imap-secret")
	t.Cleanup(of.Close)
	srv.AuthorizeTokens(of.ValidAccess)
	e := newEnv(t, testConfig())
	rt := of.IssueRefreshToken()
	imapOAuthSource(t, e, srv, "ox1", googleoauth.Grant{TokenURL: of.TokenURL(), ClientID: "imap-client", ClientSecret: "imap-secret",
		Token: &oauth2.Token{RefreshToken: rt}})
	t0 := time.Now()
	e.start()
	s := e.waitSynced("ox1", t0)
	if s.EmailsCount != 4 || e.ingested() != 4 {
		t.Fatalf("xoauth2 source %+v published %d\n%s", s, e.ingested(), srv.Logs())
	}
	g, sealed := storedGrant(t, e, "ox1")
	if g.Token == nil || !of.ValidAccess(g.Token.AccessToken) || g.Token.RefreshToken != rt || g.ClientSecret != "imap-secret" {
		t.Fatalf("refreshed token not persisted: %+v", g.Token)
	}
	if bytes.Contains(sealed, []byte(rt)) || bytes.Contains(sealed, []byte("imap-secret")) {
		t.Fatal("grant stored in clear")
	}

	// The provider drops the access token early: one forced refresh, sync goes on.
	of.ExpireAll()
	fillIMAP2(t, srv, "<late@x>")
	t1 := time.Now()
	e.db.RequestSync(context.Background(), "ox1", false)
	if s := e.waitSynced("ox1", t1); s.EmailsCount != 5 {
		t.Fatalf("after an early-expired token: %+v\n%s", s, srv.Logs())
	}

	// Revoked grant: reconnect needed, with a message that says so.
	of.Revoke(rt)
	e.db.RequestSync(context.Background(), "ox1", false)
	testkit.Eventually(t, 20*time.Second, func() bool { return e.source("ox1").Status == store.SourceReconnect }, "revoked grant not surfaced")
	if s := e.source("ox1"); !strings.Contains(s.LastError, "OAuth access was revoked") {
		t.Fatalf("last error %q", s.LastError)
	}
}

func TestIMAPXOAuth2SourceWithAccessTokenOnly(t *testing.T) {
	srv := dovecottest.Start(t)
	fillIMAP(t, srv, 2)
	srv.AddToken("short-lived")
	e := newEnv(t, testConfig())
	imapOAuthSource(t, e, srv, "ox2", googleoauth.Grant{Token: &oauth2.Token{AccessToken: "short-lived", Expiry: time.Now().Add(time.Hour)}})
	imapOAuthSource(t, e, srv, "ox3", googleoauth.Grant{Token: &oauth2.Token{AccessToken: "short-lived", Expiry: time.Now().Add(-time.Hour)}})
	t0 := time.Now()
	e.start()
	if s := e.waitSynced("ox2", t0); s.EmailsCount != 2 {
		t.Fatalf("access-token source %+v", s)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return e.source("ox3").Status == store.SourceReconnect }, "expired access token without refresh token not surfaced")
}

// fillIMAP2 appends one message with Message-ID msgID to srv's INBOX.
func fillIMAP2(t *testing.T, srv *dovecottest.Server, msgID string) {
	t.Helper()
	c, err := imapclient.DialInsecure(srv.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(srv.User, srv.Password).Wait(); err != nil {
		t.Fatal(err)
	}
	m := "From: friend@example.com\r\nSubject: late\r\nMessage-ID: " + msgID + "\r\nDate: Tue, 03 Mar 2026 11:00:00 +0000\r\n\r\nlate mail\r\n"
	cmd := c.Append("INBOX", int64(len(m)), nil)
	cmd.Write([]byte(m))
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}
