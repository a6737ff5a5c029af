package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/msgraph"
	"github.com/ownyou/home/services/ingest/graphsync"
	"github.com/ownyou/home/services/ingest/intake"
)

func (s *Service) microsoftOAuth() msgraph.OAuthConfig {
	return msgraph.OAuthConfig{ClientID: s.cfg.MicrosoftClientID, ClientSecret: s.cfg.MicrosoftClientSecret,
		Authority: s.cfg.MicrosoftAuthority, TokenURL: s.cfg.MicrosoftTokenURL}
}

// syncOutlook runs one Graph sync of an Outlook source. Its secret is the
// OAuth token (JSON); every refreshed token (Microsoft rotates refresh
// tokens) is sealed and stored again.
func (s *Service) syncOutlook(ctx context.Context, r *run) error {
	src := r.claim.Source
	pt, err := s.openSecret(r.claim)
	if err != nil {
		return err
	}
	var tok oauth2.Token
	if err := json.Unmarshal(pt, &tok); err != nil || tok.RefreshToken == "" {
		return fmt.Errorf("%w: stored Microsoft token unusable", ErrNoCredentials)
	}
	if !s.microsoftOAuth().Enabled() {
		return errors.New("Outlook is not configured on the ingest service: set OWNYOU_MICROSOFT_CLIENT_ID (and OWNYOU_MICROSOFT_CLIENT_SECRET) as for the gateway")
	}
	ts := s.microsoftOAuth().TokenSource(ctx, s.http, &tok, s.persistToken(r))
	client, err := msgraph.New(oauth2.NewClient(context.WithValue(ctx, oauth2.HTTPClient, s.http), ts), msgraph.Options{
		Endpoint: s.cfg.GraphEndpoint, Concurrency: s.cfg.GraphConcurrency, RequestsPerSecond: s.cfg.GraphRate,
		MaxAttempts: s.cfg.GraphMaxAttempts, BackoffMax: s.cfg.GraphBackoffMax, BackoffInitial: min(s.cfg.GraphBackoffMax, time.Second),
		MaxMessageBytes: s.cfg.MaxMessageBytes,
	}, s.log.With("source", src.ID))
	if err != nil {
		return err
	}
	var cur graphsync.Cursor
	if !r.claim.FullResync && len(src.Cursor) > 0 {
		if err := json.Unmarshal(src.Cursor, &cur); err != nil {
			s.log.WarnContext(ctx, "unreadable outlook cursor; full sync", "source", src.ID, "err", err)
			cur = graphsync.Cursor{}
		}
	}
	st, err := graphsync.New(client, &outlookSink{sourceSink{s: s, r: r}}, s.cfg.GraphConcurrency, s.log.With("source", src.ID)).Sync(ctx, cur)
	r.setStats(st)
	return err
}

// outlookSink adapts the store and intake to graphsync.Sink; external ids
// are Graph's immutable message ids.
type outlookSink struct{ sourceSink }

func (o *outlookSink) Deliver(ctx context.Context, f *graphsync.Fetched) error {
	src := o.r.claim.Source
	_, err := o.s.proc.Process(ctx, intake.Origin{SourceID: src.ID, ExternalID: f.ID, ThreadID: f.ThreadID, Labels: f.Labels, FallbackDate: f.InternalDate}, f.Raw)
	if errors.Is(err, intake.ErrUnparseable) {
		return o.s.db.RecordSourceFailure(ctx, src.ID, f.ID, err.Error(), true)
	}
	return err
}

func (o *outlookSink) Stored(ctx context.Context, ids []string) ([]string, error) {
	return o.s.db.StoredOrigins(ctx, o.r.claim.Source.ID, ids)
}

func (o *outlookSink) Failed(ctx context.Context, id string, err error, permanent bool) error {
	return o.s.db.RecordSourceFailure(ctx, o.r.claim.Source.ID, id, err.Error(), permanent)
}

func (o *outlookSink) SaveCursor(ctx context.Context, c graphsync.Cursor) error {
	return o.saveCursor(ctx, c)
}

func (o *outlookSink) Progress(ctx context.Context, st graphsync.Stats) error {
	return o.progress(ctx, st)
}
