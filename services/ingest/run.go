package ingest

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest/gmailsync"
	"github.com/ownyou/home/services/ingest/imapsync"
	"github.com/ownyou/home/services/ingest/intake"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// ErrNoCredentials means a source has no usable stored secret.
var ErrNoCredentials = errors.New("source has no stored credentials")

func newRunID() string {
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	return "run-" + hex.EncodeToString(b)
}

// IMAPConfig is an IMAP source's sources.config; the password (or app
// password) is the source's encrypted secret.
type IMAPConfig struct {
	Host     string   `json:"host"`
	Port     int      `json:"port"`
	Security string   `json:"security"` // tls (default) | starttls | none
	Username string   `json:"username"`
	Folders  []string `json:"folders,omitempty"`
}

// run is one claimed sync run with its heartbeat.
type run struct {
	s      *Service
	claim  store.Claim
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	stats any
}

func (r *run) setStats(v any) {
	r.mu.Lock()
	r.stats = v
	r.mu.Unlock()
}

func (r *run) heartbeat(ctx context.Context) error {
	r.mu.Lock()
	st := r.stats
	r.mu.Unlock()
	if st == nil {
		st = map[string]any{}
	}
	err := r.s.db.HeartbeatRun(ctx, r.claim.Source.ID, r.claim.RunID, st)
	if errors.Is(err, store.ErrRunSuperseded) {
		r.cancel(err)
	}
	return err
}

// runSource performs one sync run of a claimed source and records how it
// ended. A heartbeat goroutine keeps the claim alive and cancels the run if
// the claim is lost (paused, deleted, declared stale).
func (s *Service) runSource(ctx context.Context, claim store.Claim) {
	src := claim.Source
	log := s.log.With("source", src.ID, "kind", src.Kind, "run", claim.RunID)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{s: s, claim: claim, cancel: cancel}
	go func() {
		t := time.NewTicker(s.cfg.HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := r.heartbeat(ctx); err != nil && !errors.Is(err, store.ErrRunSuperseded) && ctx.Err() == nil {
					log.WarnContext(ctx, "heartbeat failed", "err", err)
				}
			}
		}
	}()

	start := time.Now()
	log.InfoContext(ctx, "sync started")
	var err error
	switch src.Kind {
	case store.SourceGmail:
		err = s.syncGmail(ctx, r)
	case store.SourceIMAP:
		err = s.syncIMAP(ctx, r)
	case store.SourceOutlook:
		err = s.syncOutlook(ctx, r)
	default:
		err = fmt.Errorf("unknown source kind %q", src.Kind)
	}
	if cause := context.Cause(ctx); errors.Is(cause, store.ErrRunSuperseded) {
		log.InfoContext(ctx, "sync run lost its claim (paused, deleted or declared stale); stopped")
		return
	}
	// Record the outcome even while shutting down.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	r.mu.Lock()
	stats := r.stats
	r.mu.Unlock()
	o := store.RunOutcome{Status: store.SourceIdle, NextSyncAt: time.Now().Add(jitter(s.cfg.SyncInterval)), Stats: stats}
	switch {
	case err == nil:
		log.InfoContext(ctx, "sync finished", "took", time.Since(start).Round(time.Millisecond), "stats", stats)
	case errors.Is(err, googleoauth.ErrReconnectNeeded), errors.Is(err, imapsync.ErrAuth), errors.Is(err, ErrNoCredentials):
		o.Status, o.Error = store.SourceReconnect, reconnectMessage(src.Kind, err)
		log.WarnContext(ctx, "sync needs the user to reconnect", "err", err)
	case ctx.Err() != nil:
		// Shutdown: the next start resumes from the saved cursor.
		o.Status, o.Error, o.NextSyncAt = store.SourceFailed, "interrupted by shutdown; resuming", time.Now()
		log.InfoContext(ctx, "sync interrupted by shutdown")
	default:
		o.Status, o.Error, o.NextSyncAt = store.SourceFailed, err.Error(), time.Now().Add(jitter(s.cfg.RetryAfter))
		log.ErrorContext(ctx, "sync failed; will retry", "err", err, "retry_at", o.NextSyncAt)
	}
	if err := s.db.FinishRun(fctx, src.ID, claim.RunID, o); err != nil && !errors.Is(err, store.ErrRunSuperseded) {
		log.ErrorContext(fctx, "record sync outcome failed; the stale-run check will retry it", "err", err)
	}
}

func reconnectMessage(kind string, err error) string {
	if kind == store.SourceIMAP && errors.Is(err, googleoauth.ErrReconnectNeeded) {
		return "The mail provider's OAuth access was revoked or has expired: reconnect the account (" + err.Error() + ")"
	}
	switch kind {
	case store.SourceGmail:
		return "Google access was revoked or has expired: reconnect the account (" + err.Error() + ")"
	case store.SourceOutlook:
		return "Microsoft access was revoked or has expired: reconnect the account (" + err.Error() + ")"
	default:
		return "The mail server rejected the credentials: update the password or reconnect (" + err.Error() + ")"
	}
}

// jitter spreads d by ±10% so sources do not sync in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

func (s *Service) openSecret(claim store.Claim) ([]byte, error) {
	if len(claim.Secret) == 0 {
		return nil, ErrNoCredentials
	}
	pt, err := s.box.Open(claim.Secret, []byte(claim.Source.ID))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCredentials, err)
	}
	return pt, nil
}

// SealSecret encrypts a source secret bound to the source id, as the
// gateway does when it creates sources.
func (s *Service) SealSecret(sourceID string, plaintext []byte) ([]byte, error) {
	return s.box.Seal(plaintext, []byte(sourceID))
}

func (s *Service) syncGmail(ctx context.Context, r *run) error {
	src := r.claim.Source
	pt, err := s.openSecret(r.claim)
	if err != nil {
		return err
	}
	var tok oauth2.Token
	if err := json.Unmarshal(pt, &tok); err != nil || tok.RefreshToken == "" {
		return fmt.Errorf("%w: stored Google token unusable", ErrNoCredentials)
	}
	ts := s.googleOAuth().TokenSource(ctx, s.http, &tok, s.persistToken(r))
	client := oauth2.NewClient(context.WithValue(ctx, oauth2.HTTPClient, s.http), ts)
	var cur gmailsync.Cursor
	if !r.claim.FullResync && len(src.Cursor) > 0 {
		if err := json.Unmarshal(src.Cursor, &cur); err != nil {
			s.log.WarnContext(ctx, "unreadable gmail cursor; full sync", "source", src.ID, "err", err)
			cur = gmailsync.Cursor{}
		}
	}
	eng, err := gmailsync.New(ctx, client, s.cfg.GmailEndpoint, s.gmail, &gmailSink{sourceSink{s: s, r: r}}, s.log.With("source", src.ID))
	if err != nil {
		return err
	}
	st, err := eng.Sync(ctx, cur)
	r.setStats(st)
	return err
}

// persistToken stores each new OAuth token of a Gmail or Outlook source
// (new access token, rotated refresh token) sealed, fenced by the run:
// credentials the user replaced meanwhile (a reconnect) win.
func (s *Service) persistToken(r *run) googleoauth.PersistFunc {
	return func(ctx context.Context, t *oauth2.Token) error {
		b, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("encode token: %w", err)
		}
		sealed, err := s.SealSecret(r.claim.Source.ID, b)
		if err != nil {
			return err
		}
		return s.db.SetRunSecret(ctx, r.claim.Source.ID, r.claim.RunID, sealed)
	}
}

// sourceSink is what the Gmail and Outlook sinks share: recorded
// failures, label and deletion mirroring, full-sync stamps, all keyed by
// the source's external message ids.
type sourceSink struct {
	s *Service
	r *run
}

// gmailSink adapts the store and intake to gmailsync.Sink.
type gmailSink struct{ sourceSink }

func (g *gmailSink) Deliver(ctx context.Context, f *gmailsync.Fetched) error {
	src := g.r.claim.Source
	_, err := g.s.proc.Process(ctx, intake.Origin{SourceID: src.ID, ExternalID: f.ID, ThreadID: f.ThreadID, Labels: f.LabelIDs, FallbackDate: f.InternalDate}, f.Raw)
	if errors.Is(err, intake.ErrUnparseable) {
		return g.s.db.RecordSourceFailure(ctx, src.ID, f.ID, err.Error(), true)
	}
	return err
}

func (g *gmailSink) Failed(ctx context.Context, id string, err error) error {
	return g.s.db.RecordSourceFailure(ctx, g.r.claim.Source.ID, id, err.Error(), false)
}

func (g *sourceSink) Retries(ctx context.Context) ([]string, error) {
	return g.s.db.DueSourceFailures(ctx, g.r.claim.Source.ID, "", 500)
}

func (g *sourceSink) Recovered(ctx context.Context, id string) error {
	return g.s.db.ClearSourceFailure(ctx, g.r.claim.Source.ID, id)
}

func (g *gmailSink) SaveCursor(ctx context.Context, c gmailsync.Cursor) error {
	return g.saveCursor(ctx, c)
}

func (g *gmailSink) Progress(ctx context.Context, st gmailsync.Stats) error {
	return g.progress(ctx, st)
}

// saveCursor stores the run's cursor, fenced by the run: a run that lost
// its claim is cancelled instead.
func (g *sourceSink) saveCursor(ctx context.Context, c any) error {
	err := g.s.db.SaveSourceCursor(ctx, g.r.claim.Source.ID, g.r.claim.RunID, c)
	if errors.Is(err, store.ErrRunSuperseded) {
		g.r.cancel(err)
	}
	return err
}

// progress records the run's totals and heartbeats.
func (g *sourceSink) progress(ctx context.Context, st any) error {
	g.r.setStats(st)
	return g.r.heartbeat(ctx)
}

func (s *Service) syncIMAP(ctx context.Context, r *run) error {
	src := r.claim.Source
	var ic IMAPConfig
	if err := json.Unmarshal(src.Config, &ic); err != nil || ic.Host == "" {
		return fmt.Errorf("imap source config unusable: %v", err)
	}
	pw, err := s.openSecret(r.claim)
	if err != nil {
		return err
	}
	if ic.Port == 0 {
		ic.Port = 993
	}
	cfg := imapsync.Config{
		Addr: ic.Host + ":" + strconv.Itoa(ic.Port), Security: imapsync.Security(ic.Security),
		Username: ic.Username, Password: string(pw), Folders: ic.Folders, MaxSize: s.cfg.MaxMessageBytes,
	}
	var cur imapsync.Cursor
	if !r.claim.FullResync && len(src.Cursor) > 0 {
		if err := json.Unmarshal(src.Cursor, &cur); err != nil {
			cur = imapsync.Cursor{}
		}
	}
	st, err := s.imapSync(ctx, r.claim, pw, cfg, cur, &imapSink{s: s, r: r})
	r.setStats(st)
	return err
}

// imapSink adapts the store and intake to imapsync.Sink. External ids are
// "folder/uidvalidity/uid".
type imapSink struct {
	s *Service
	r *run
}

func imapKey(folder string, v, uid uint32) string {
	return fmt.Sprintf("%s/%d/%d", folder, v, uid)
}

func (m *imapSink) Deliver(ctx context.Context, f *imapsync.Fetched) error {
	src := m.r.claim.Source
	key := imapKey(f.Folder, f.UIDValidity, f.UID)
	_, err := m.s.proc.Process(ctx, intake.Origin{SourceID: src.ID, ExternalID: key, Labels: []string{f.Folder}, FallbackDate: f.InternalDate}, f.Raw)
	if errors.Is(err, intake.ErrUnparseable) {
		return m.s.db.RecordSourceFailure(ctx, src.ID, key, err.Error(), true)
	}
	return err
}

func (m *imapSink) Failed(ctx context.Context, folder string, v, uid uint32, err error) error {
	permanent := errors.Is(err, imapsync.ErrTooLarge) || errors.Is(err, mailparse.ErrTooLarge)
	return m.s.db.RecordSourceFailure(ctx, m.r.claim.Source.ID, imapKey(folder, v, uid), err.Error(), permanent)
}

func (m *imapSink) Retries(ctx context.Context, folder string, v uint32) ([]uint32, error) {
	prefix := fmt.Sprintf("%s/%d/", folder, v)
	ids, err := m.s.db.DueSourceFailures(ctx, m.r.claim.Source.ID, prefix, 500)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, id := range ids {
		if n, err := strconv.ParseUint(strings.TrimPrefix(id, prefix), 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out, nil
}

func (m *imapSink) Recovered(ctx context.Context, folder string, v, uid uint32) error {
	return m.s.db.ClearSourceFailure(ctx, m.r.claim.Source.ID, imapKey(folder, v, uid))
}

func (m *imapSink) SaveCursor(ctx context.Context, c imapsync.Cursor) error {
	err := m.s.db.SaveSourceCursor(ctx, m.r.claim.Source.ID, m.r.claim.RunID, c)
	if errors.Is(err, store.ErrRunSuperseded) {
		m.r.cancel(err)
	}
	return err
}

func (m *imapSink) Progress(ctx context.Context, st imapsync.Stats) error {
	m.r.setStats(st)
	return m.r.heartbeat(ctx)
}
