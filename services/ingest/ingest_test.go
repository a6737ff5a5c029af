package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/gmailfake"
	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/ingest/imapsync/dovecottest"
	"github.com/ownyou/home/services/ingest/mailparse"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type env struct {
	t   *testing.T
	db  *store.DB
	bus *bus.Bus
	svc *Service
	cfg Config
}

func testConfig() Config {
	return Config{SyncInterval: time.Hour, RetryAfter: 200 * time.Millisecond, StaleAfter: time.Minute, HeartbeatEvery: 50 * time.Millisecond,
		PollEvery: 50 * time.Millisecond, MaxSyncs: 2, Workers: 4, MaxMessageBytes: 1 << 20, GmailQuotaPerMin: 1_000_000,
		GmailMaxAttempts: 3, GmailBackoffMax: 20 * time.Millisecond}
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, db: testkit.DB(t), bus: testkit.NATS(t, nil), cfg: cfg}
	svc, err := New(cfg, app.Deps{Common: app.Common{DataDir: t.TempDir()}, DB: e.db, Bus: e.bus, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

func (e *env) start() {
	testkit.Run(e.t, e.svc)
}

// ingested counts emails.ingested messages on the stream.
func (e *env) ingested() uint64 {
	st, err := e.bus.JetStream().Stream(context.Background(), bus.StreamEmails)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstreamSubjects("emails.ingested"))
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Subjects["emails.ingested"]
}

func (e *env) emails() int {
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM emails`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) source(id string) store.Source {
	s, err := e.db.GetSource(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) upload(id, name string, data []byte) {
	e.t.Helper()
	ctx := context.Background()
	e.putUpload(id, name, data)
	if err := bus.Publish(ctx, e.bus, bus.ImportsRequested, id, bus.ImportRequested{ImportID: id, Object: id, Filename: name}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitImport(id string) store.Import {
	e.t.Helper()
	var im store.Import
	testkit.Eventually(e.t, 60*time.Second, func() bool {
		var err error
		im, err = e.db.GetImport(context.Background(), id)
		return err == nil && (im.Status == store.ImportDone || (im.Status == store.ImportFailed && !strings.Contains(im.Error, "retrying")))
	}, "import %s did not finish", id)
	return im
}

func TestFileImportEndToEnd(t *testing.T) {
	e := newEnv(t, testConfig())
	e.start()
	var mbox bytes.Buffer
	if err := mailparse.WriteSyntheticMbox(&mbox, 120, 3); err != nil {
		t.Fatal(err)
	}
	mbox.WriteString("From x Mon Jan  2 15:04:05 2006\nSubject: huge\n\n" + strings.Repeat("z", 2<<20) + "\n\n")
	mbox.WriteString("From x Mon Jan  2 15:04:05 2006\n\n")
	data := mbox.Bytes()

	e.upload("imp1", "takeout.mbox", data)
	im := e.waitImport("imp1")
	if im.Status != store.ImportDone || im.Messages != 122 || im.Imported != 120 || im.Errors != 2 || im.BytesRead != int64(len(data)) {
		t.Fatalf("import %+v", im)
	}
	if len(im.ErrorList) != 2 || !strings.Contains(im.ErrorList[0].Error+im.ErrorList[1].Error, "size cap") {
		t.Fatalf("errors %+v", im.ErrorList)
	}
	if e.emails() != 120 || e.ingested() != 120 {
		t.Fatalf("emails %d published %d", e.emails(), e.ingested())
	}
	// The same mail again (as a second upload) stores and publishes nothing new.
	e.upload("imp2", "again.mbox", data)
	im = e.waitImport("imp2")
	if im.Imported != 0 || im.Duplicates != 120 || e.emails() != 120 || e.ingested() != 120 {
		t.Fatalf("re-import %+v, emails %d, published %d", im, e.emails(), e.ingested())
	}
	// A stored raw message replays to the same bytes.
	var id string
	e.db.Pool.QueryRow(context.Background(), `SELECT id FROM emails LIMIT 1`).Scan(&id)
	if raw, err := e.db.RawEmail(context.Background(), id); err != nil || !bytes.Contains(raw, []byte("Message-ID: <gen-3-")) {
		t.Fatalf("raw replay: %v", err)
	}
}

func TestMissingUploadFailsImportClearly(t *testing.T) {
	e := newEnv(t, testConfig())
	e.start()
	ctx := context.Background()
	e.db.CreateImport(ctx, "gone", "x.mbox", store.ImportQueued, 10)
	bus.Publish(ctx, e.bus, bus.ImportsRequested, "gone", bus.ImportRequested{ImportID: "gone", Object: "gone", Filename: "x.mbox"})
	im := e.waitImport("gone")
	if im.Status != store.ImportFailed || !strings.Contains(im.Error, "upload it again") {
		t.Fatalf("import %+v", im)
	}
}

// gmailEnv wires the service to a fake Gmail API and a fake token endpoint.
func gmailEnv(t *testing.T, n int) (*env, *gmailfake.Server, *oauthfake.Server, string) {
	gm := gmailfake.New("user@example.com")
	t.Cleanup(gm.Close)
	of := oauthfake.New("cid", "csecret")
	t.Cleanup(of.Close)
	gm.Authorize = of.ValidAccess
	for i := 0; i < n; i++ {
		gm.Add([]byte(fmt.Sprintf("From: shop@example.com\r\nTo: user@example.com\r\nSubject: order %d\r\nMessage-ID: <order-%d@example.com>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\nYour order %d shipped.\r\n", i, i, i)), "INBOX")
	}
	cfg := testConfig()
	cfg.GoogleClientID, cfg.GoogleClientSecret, cfg.GoogleTokenURL, cfg.GmailEndpoint = "cid", "csecret", of.TokenURL(), gm.Endpoint()
	e := newEnv(t, cfg)
	rt := of.IssueRefreshToken()
	e.addOAuthSource("gm1", store.SourceGmail, "user@example.com", rt)
	return e, gm, of, rt
}

// addOAuthSource connects a Gmail or Outlook source whose sealed secret is
// an OAuth token with refreshToken, as the gateway's OAuth flow stores it.
func (e *env) addOAuthSource(id, kind, account, refreshToken string) {
	e.t.Helper()
	tok, _ := json.Marshal(&oauth2.Token{RefreshToken: refreshToken, TokenType: "Bearer"})
	sealed, err := e.svc.SealSecret(id, tok)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.CreateSource(context.Background(), store.Source{ID: id, Kind: kind, Account: account}, sealed); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitSynced(id string, after time.Time) store.Source {
	e.t.Helper()
	var s store.Source
	testkit.Eventually(e.t, 30*time.Second, func() bool {
		s = e.source(id)
		return s.Status != store.SourceSyncing && s.LastSuccessAt != nil && s.LastSuccessAt.After(after)
	}, "source %s did not finish a sync", id)
	return s
}

func TestGmailSourceSyncsFullThenIncrementalAndNeedsReconnectWhenRevoked(t *testing.T) {
	e, gm, of, rt := gmailEnv(t, 25)
	t0 := time.Now()
	e.start()
	s := e.waitSynced("gm1", t0)
	if s.Status != store.SourceIdle || s.EmailsCount != 25 || e.emails() != 25 || e.ingested() != 25 {
		t.Fatalf("after full sync: %+v emails %d published %d", s, e.emails(), e.ingested())
	}
	var cur struct {
		HistoryID uint64 `json:"history_id"`
	}
	json.Unmarshal(s.Cursor, &cur)
	if cur.HistoryID != gm.HistoryID() {
		t.Fatalf("cursor %s, want history %d", s.Cursor, gm.HistoryID())
	}
	// The refreshed access token was persisted, still encrypted.
	secret, _ := e.db.SourceSecret(context.Background(), "gm1")
	if bytes.Contains(secret, []byte(rt)) {
		t.Fatal("refresh token stored in clear")
	}

	// New mail, "sync now": only the new mail is fetched.
	gm.Add([]byte("From: a@example.com\r\nSubject: new\r\nMessage-ID: <new@x>\r\n\r\nnew mail\r\n"))
	gets := gm.Calls("get")
	t1 := time.Now()
	if _, err := e.db.RequestSync(context.Background(), "gm1", false); err != nil {
		t.Fatal(err)
	}
	s = e.waitSynced("gm1", t1)
	if e.emails() != 26 || gm.Calls("get")-gets != 1 || s.EmailsCount != 26 {
		t.Fatalf("incremental: emails %d gets %d", e.emails(), gm.Calls("get")-gets)
	}

	// Revoked grant: the source says reconnect, and is not retried.
	of.Revoke(rt)
	of.ExpireAll()
	e.db.RequestSync(context.Background(), "gm1", false)
	testkit.Eventually(t, 20*time.Second, func() bool { return e.source("gm1").Status == store.SourceReconnect }, "source not marked reconnect_needed")
	if s := e.source("gm1"); !strings.Contains(s.LastError, "reconnect") {
		t.Fatalf("last error %q", s.LastError)
	}
}

func TestGmailMessageFailureIsRecordedAndRetriedLater(t *testing.T) {
	e, gm, _, _ := gmailEnv(t, 5)
	bad := gm.Add([]byte("From: a@example.com\r\nSubject: bad\r\nMessage-ID: <bad@x>\r\n\r\nx\r\n"))
	gm.FailMessage(bad, gmailfake.Fault{Code: 500, Reason: "backendError"})
	t0 := time.Now()
	e.start()
	s := e.waitSynced("gm1", t0)
	fails, _ := e.db.ListSourceFailures(context.Background(), "gm1", 10)
	if s.EmailsCount != 5 || len(fails) != 1 || fails[0].ExternalID != bad {
		t.Fatalf("source %+v failures %+v", s, fails)
	}
	gm.FailMessage(bad, gmailfake.Fault{})
	e.db.Pool.Exec(context.Background(), `UPDATE source_failures SET next_retry_at = now()`)
	t1 := time.Now()
	e.db.RequestSync(context.Background(), "gm1", false)
	e.waitSynced("gm1", t1)
	if fails, _ := e.db.ListSourceFailures(context.Background(), "gm1", 10); len(fails) != 0 || e.emails() != 6 {
		t.Fatalf("after retry: failures %+v emails %d", fails, e.emails())
	}
}

func TestStaleRunIsDetectedAndRetried(t *testing.T) {
	e, _, _, _ := gmailEnv(t, 3)
	ctx := context.Background()
	// A run that died without a word: claimed long ago, no heartbeat since.
	if _, err := e.db.ClaimDueSource(ctx, "crashed-run", []string{store.SourceGmail}); err != nil {
		t.Fatal(err)
	}
	e.db.Pool.Exec(ctx, `UPDATE sources SET heartbeat_at = now() - interval '2 minutes'`)
	t0 := time.Now()
	e.start()
	testkit.Eventually(t, 10*time.Second, func() bool {
		s := e.source("gm1")
		return s.ErrorsCount >= 1 && s.LastErrorAt != nil
	}, "stale run not failed")
	s := e.waitSynced("gm1", t0)
	if s.EmailsCount != 3 {
		t.Fatalf("after retry: %+v", s)
	}
}

func TestIMAPSourceSyncsFromDovecot(t *testing.T) {
	srv := dovecottest.Start(t)
	fillIMAP(t, srv, 7)
	e := newEnv(t, testConfig())
	host, port := splitHostPort(t, srv.Addr)
	cfg, _ := json.Marshal(IMAPConfig{Host: host, Port: port, Security: "none", Username: srv.User})
	sealed, _ := e.svc.SealSecret("im1", []byte(srv.Password))
	if _, err := e.db.CreateSource(context.Background(), store.Source{ID: "im1", Kind: store.SourceIMAP, Account: srv.User, Config: cfg}, sealed); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	e.start()
	s := e.waitSynced("im1", t0)
	if s.EmailsCount != 7 || e.ingested() != 7 {
		t.Fatalf("imap source %+v published %d", s, e.ingested())
	}
	// Wrong password: reconnect needed.
	bad, _ := e.svc.SealSecret("im1", []byte("wrong"))
	e.db.SetSourceSecret(context.Background(), "im1", bad, false)
	e.db.RequestSync(context.Background(), "im1", false)
	testkit.Eventually(t, 20*time.Second, func() bool { return e.source("im1").Status == store.SourceReconnect }, "imap auth failure not surfaced")
}

func TestZipAndEMLUploadsImport(t *testing.T) {
	e := newEnv(t, testConfig())
	e.start()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for i := 0; i < 3; i++ {
		w, _ := zw.Create(fmt.Sprintf("mail/%d.eml", i))
		fmt.Fprintf(w, "From: z@example.com\r\nSubject: zip %d\r\nMessage-ID: <zip-%d@x>\r\n\r\nzipped %d\r\n", i, i, i)
	}
	w, _ := zw.Create("readme.txt")
	w.Write([]byte("not mail"))
	zw.Close()
	e.upload("z1", "export.zip", zb.Bytes())
	if im := e.waitImport("z1"); im.Status != store.ImportDone || im.Imported != 3 || im.Messages != 3 {
		t.Fatalf("zip import %+v", im)
	}
	e.upload("e1", "one.eml", []byte("From: e@example.com\r\nSubject: single\r\nMessage-ID: <single@x>\r\n\r\nbody\r\n"))
	if im := e.waitImport("e1"); im.Status != store.ImportDone || im.Imported != 1 {
		t.Fatalf("eml import %+v", im)
	}
	if e.emails() != 4 || e.ingested() != 4 {
		t.Fatalf("emails %d published %d", e.emails(), e.ingested())
	}
}
