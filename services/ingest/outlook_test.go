package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/msgraph/graphfake"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

// outlookEnv wires the service to a fake Graph mailbox and a fake Microsoft
// token endpoint that rotates refresh tokens, with source "ol1" connected.
func outlookEnv(t *testing.T) (*env, *graphfake.Server, *oauthfake.Server, string) {
	gf := graphfake.New("ada@contoso.test")
	t.Cleanup(gf.Close)
	of := oauthfake.New("ms-cid", "ms-secret")
	of.RotateRefresh, of.Scope = true, "User.Read Mail.Read"
	t.Cleanup(of.Close)
	gf.Authorize = of.ValidAccess
	gf.Limit = 4
	cfg := testConfig()
	cfg.MicrosoftClientID, cfg.MicrosoftClientSecret, cfg.MicrosoftTokenURL, cfg.GraphEndpoint = "ms-cid", "ms-secret", of.TokenURL(), gf.Endpoint()
	cfg.GraphConcurrency, cfg.GraphRate, cfg.GraphMaxAttempts, cfg.GraphBackoffMax = 4, 10_000, 5, 20*time.Millisecond
	e := newEnv(t, cfg)
	rt := of.IssueRefreshToken()
	e.addOAuthSource("ol1", store.SourceOutlook, "ada@contoso.test", rt)
	return e, gf, of, rt
}

func olMail(n int) []byte {
	return []byte(fmt.Sprintf("From: shop@example.com\r\nTo: ada@contoso.test\r\nSubject: outlook %d\r\nMessage-ID: <ol-%d@example.com>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\nmail number %d\r\n", n, n, n))
}

// syncNow asks for a sync of ol1 and waits until it finished.
func (e *env) syncNow(full bool) store.Source {
	e.t.Helper()
	t0 := time.Now()
	if _, err := e.db.RequestSync(context.Background(), "ol1", full); err != nil {
		e.t.Fatal(err)
	}
	return e.waitSynced("ol1", t0)
}

// byMessageID maps the stored emails by Message-ID.
func (e *env) byMessageID() map[string]store.Email {
	e.t.Helper()
	page, err := e.db.ListEmails(context.Background(), 500, "")
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]store.Email{}
	for _, em := range page.Emails {
		out[em.MessageID] = em
	}
	return out
}

func TestOutlookSyncsEveryFolderThenMirrorsAddsMovesAndDeletesByDelta(t *testing.T) {
	e, gf, _, rt := outlookEnv(t)
	inbox, archive, trash := gf.Folder("inbox"), gf.Folder("archive"), gf.Folder("deleteditems")
	projects := gf.AddFolder("", "Projects")
	y2026 := gf.AddFolder(projects, "2026")
	var inboxIDs []string
	for i := range 23 { // more than one delta page (graphfake pages at 10 unless asked)
		inboxIDs = append(inboxIDs, gf.Add(inbox, olMail(i)))
	}
	gf.Add(y2026, olMail(100))
	gf.Add(archive, olMail(101))

	t0 := time.Now()
	e.start()
	s := e.waitSynced("ol1", t0)
	if s.Status != store.SourceIdle || e.emails() != 25 || e.ingested() != 25 {
		t.Fatalf("after full sync: status %s, emails %d, published %d (%s)", s.Status, e.emails(), e.ingested(), s.LastError)
	}
	byID := e.byMessageID()
	if l := byID["ol-100@example.com"].Labels; fmt.Sprint(l) != "[Projects/2026]" {
		t.Errorf("nested folder label %v, want [Projects/2026]", l)
	}
	if l := byID["ol-0@example.com"].Labels; fmt.Sprint(l) != "[INBOX]" {
		t.Errorf("inbox label %v", l)
	}
	var cur struct {
		Folders map[string]struct {
			DeltaLink string `json:"delta_link"`
		} `json:"folders"`
		Full any `json:"full"`
	}
	if err := json.Unmarshal(s.Cursor, &cur); err != nil || cur.Full != nil || !strings.Contains(cur.Folders[inbox].DeltaLink, "$deltatoken=") {
		t.Fatalf("cursor after full sync: %s (%v)", s.Cursor, err)
	}
	if gf.MaxInFlight() > 4 {
		t.Errorf("%d Graph requests at once; Exchange allows 4 per mailbox", gf.MaxInFlight())
	}
	// Microsoft rotated the refresh token: the new one is stored, sealed.
	secret, _ := e.db.SourceSecret(context.Background(), "ol1")
	if bytes.Contains(secret, []byte("refresh-")) {
		t.Fatal("refresh token stored in clear")
	}
	pt, err := e.svc.box.Open(secret, []byte("ol1"))
	var saved oauth2.Token
	if err != nil || json.Unmarshal(pt, &saved) != nil || saved.RefreshToken == rt || saved.RefreshToken == "" {
		t.Fatalf("stored token after rotation: %+v (%v); the rotated refresh token must replace %s", saved, err, rt)
	}

	// Changes: one new mail, one moved to Archive, one deleted to Deleted
	// Items (a move in Outlook), one deleted for good, one only read.
	mimes := gf.Calls("mime")
	gf.Add(inbox, olMail(200))
	gf.Move(inboxIDs[1], archive)
	gf.Move(inboxIDs[2], trash)
	gf.Delete(inboxIDs[3])
	gf.Update(inboxIDs[4])
	s = e.syncNow(false)
	if got := gf.Calls("mime") - mimes; got != 1 {
		t.Errorf("incremental sync fetched %d messages, want only the new one (moved and read mail is not fetched again)", got)
	}
	if e.emails() != 26 {
		t.Fatalf("emails %d, want 26: deleted mail stays, moved mail is one email (%s)", e.emails(), s.LastRun)
	}
	var origins int
	e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM email_origins WHERE source_id = 'ol1'`).Scan(&origins)
	if origins != 26 {
		t.Errorf("%d origins for 26 mails: a moved message must keep its id", origins)
	}
	byID = e.byMessageID()
	if l := byID["ol-1@example.com"]; fmt.Sprint(l.Labels) != "[ARCHIVE]" || l.DeletedAtSource != nil {
		t.Errorf("moved mail: labels %v deleted %v, want [ARCHIVE] and not deleted", l.Labels, l.DeletedAtSource)
	}
	if l := byID["ol-2@example.com"]; fmt.Sprint(l.Labels) != "[TRASH]" || l.DeletedAtSource != nil {
		t.Errorf("mail moved to Deleted Items: labels %v deleted %v, want [TRASH] and kept", l.Labels, l.DeletedAtSource)
	}
	if l := byID["ol-3@example.com"]; l.DeletedAtSource == nil {
		t.Errorf("mail deleted for good is not marked deleted at source (run %s)", s.LastRun)
	}
	if l := byID["ol-4@example.com"]; fmt.Sprint(l.Labels) != "[INBOX]" || l.DeletedAtSource != nil {
		t.Errorf("read mail changed: labels %v deleted %v", l.Labels, l.DeletedAtSource)
	}
	if _, ok := byID["ol-200@example.com"]; !ok {
		t.Error("new mail not stored")
	}
}

func TestOutlookExpiredDeltaTokenResyncsWithoutImportingAgain(t *testing.T) {
	e, gf, _, _ := outlookEnv(t)
	inbox := gf.Folder("inbox")
	var ids []string
	for i := range 12 {
		ids = append(ids, gf.Add(inbox, olMail(i)))
	}
	t0 := time.Now()
	e.start()
	e.waitSynced("ol1", t0)

	mimes := gf.Calls("mime")
	gf.Delete(ids[0])
	gf.Add(inbox, olMail(50))
	gf.ExpireDeltaTokens()
	s := e.syncNow(false)
	var run struct {
		Mode     string `json:"mode"`
		FellBack bool   `json:"fell_back"`
		Known    int    `json:"known"`
	}
	json.Unmarshal(s.LastRun, &run)
	if !run.FellBack || run.Mode != "full" || run.Known != 11 {
		t.Errorf("run after expired delta token: %s; want a full resync that found the 11 stored mails", s.LastRun)
	}
	if got := gf.Calls("mime") - mimes; got != 1 {
		t.Errorf("resync fetched %d messages, want only the new one", got)
	}
	byID := e.byMessageID()
	if e.emails() != 13 || byID["ol-0@example.com"].DeletedAtSource == nil {
		t.Errorf("emails %d; mail deleted while tracking was lost marked %v, want kept and marked", e.emails(), byID["ol-0@example.com"].DeletedAtSource)
	}
	// Tracking works again afterwards.
	gf.Add(inbox, olMail(51))
	s = e.syncNow(false)
	json.Unmarshal(s.LastRun, &run)
	if run.Mode != "incremental" || e.emails() != 14 {
		t.Errorf("after the resync: run %s, emails %d", s.LastRun, e.emails())
	}
}

func TestOutlookThrottlingIsWaitedOut(t *testing.T) {
	e, gf, _, _ := outlookEnv(t)
	inbox := gf.Folder("inbox")
	for i := range 30 {
		gf.Add(inbox, olMail(i))
	}
	gf.Throttle(3, 429, 1)
	gf.Throttle(2, 503, 1)
	t0 := time.Now()
	e.start()
	s := e.waitSynced("ol1", t0)
	if e.emails() != 30 || gf.Calls("throttled") < 5 {
		t.Fatalf("emails %d after %d throttled answers (%s)", e.emails(), gf.Calls("throttled"), s.LastError)
	}
	if fails, _ := e.db.ListSourceFailures(context.Background(), "ol1", 10); len(fails) != 0 {
		t.Errorf("throttling recorded failures: %+v", fails)
	}
}

func TestOutlookRevokedGrantNeedsReconnect(t *testing.T) {
	e, gf, of, rt := outlookEnv(t)
	gf.Add(gf.Folder("inbox"), olMail(1))
	t0 := time.Now()
	e.start()
	e.waitSynced("ol1", t0)

	var saved oauth2.Token
	secret, _ := e.db.SourceSecret(context.Background(), "ol1")
	pt, _ := e.svc.box.Open(secret, []byte("ol1"))
	json.Unmarshal(pt, &saved)
	of.Revoke(rt)
	of.Revoke(saved.RefreshToken)
	if _, err := e.db.RequestSync(context.Background(), "ol1", false); err != nil {
		t.Fatal(err)
	}
	var s store.Source
	testkit.Eventually(t, 30*time.Second, func() bool { s = e.source("ol1"); return s.Status == store.SourceReconnect }, "source never asked to reconnect")
	if !strings.Contains(s.LastError, "Microsoft access was revoked") {
		t.Errorf("last error %q does not tell the user to reconnect Microsoft", s.LastError)
	}
}
