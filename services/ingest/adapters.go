package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest/imapsync"
	"github.com/ownyou/home/services/ingest/intake"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// emailStore implements intake.Store over pkg/store.
type emailStore struct{ db *store.DB }

func (e *emailStore) UpsertEmail(ctx context.Context, em *intake.Email) (bool, error) {
	rec := toStoreEmail(em)
	needs, err := e.db.InsertEmail(ctx, rec)
	if err != nil {
		return false, err
	}
	added, err := e.db.AddEmailOrigin(ctx, store.EmailOrigin{EmailID: em.ID, SourceID: em.Origin.SourceID, ImportID: em.Origin.ImportID,
		ExternalID: em.Origin.ExternalID, Labels: em.Origin.Labels})
	if err != nil {
		return false, err
	}
	if !added && em.Origin.SourceID != "" && em.Origin.Labels != nil {
		// Fetched again (a retry, or a full resync after Gmail's history
		// expired): the labels it carries now are the current ones.
		if _, err := e.db.SetOriginLabels(ctx, em.Origin.SourceID, em.Origin.ExternalID, em.Origin.Labels); err != nil {
			return false, err
		}
	}
	return needs, nil
}

func (e *emailStore) MarkPublished(ctx context.Context, ids ...string) error {
	if len(ids) == 1 {
		return e.db.MarkPublished(ctx, ids[0])
	}
	return e.db.MarkPublishedMany(ctx, ids)
}

// toStoreEmail maps a parsed message to the emails row.
func toStoreEmail(em *intake.Email) store.Email {
	m := em.Msg
	rec := store.Email{
		ID: em.ID, SourceID: em.Origin.SourceID, ImportID: em.Origin.ImportID,
		MessageID: m.MessageID, ContentHash: m.ContentHash,
		Subject: m.Subject, FromAddr: m.From.Addr, FromName: m.From.Name,
		To: addrs(m.To), Cc: addrs(m.Cc), DateSource: string(m.DateSource),
		BodyText: m.Text, BodyHTML: m.HTML, Labels: em.Origin.Labels, Warnings: m.Warnings,
		SizeBytes: m.Size, Raw: em.Raw,
	}
	if !m.Date.IsZero() {
		d := m.Date
		rec.SentAt = &d
	}
	// Gmail threads by its own id; elsewhere the first References id (or
	// In-Reply-To) names the thread root.
	switch {
	case em.Origin.ThreadID != "":
		rec.ThreadID = em.Origin.ThreadID
	case len(m.References) > 0:
		rec.ThreadID = m.References[0]
	case m.InReplyTo != "":
		rec.ThreadID = m.InReplyTo
	}
	for _, a := range m.Attachments {
		rec.Attachments = append(rec.Attachments, store.Attachment{Name: a.Name, ContentType: a.ContentType, Size: a.Size})
	}
	return rec
}

func addrs(l []mailparse.Address) []string {
	out := make([]string, 0, len(l))
	for _, a := range l {
		if a.Addr != "" {
			out = append(out, a.Addr)
		}
	}
	return out
}

// publisher implements intake.Publisher on the bus: emails.ingested with
// Msg-Id = email id.
type publisher struct{ bus *bus.Bus }

func (p *publisher) PublishIngested(ctx context.Context, e *intake.Email) error {
	if err := bus.Publish(ctx, p.bus, bus.EmailsIngested, e.ID, bus.EmailIngested{EmailID: e.ID, SourceID: e.Origin.SourceID, ImportID: e.Origin.ImportID}); err != nil {
		return fmt.Errorf("publish %s: %w", e.ID, err)
	}
	return nil
}

// Relabeled mirrors a label (Gmail) or folder (Outlook) change onto the
// stored email (a no-op for a message never stored).
func (g *sourceSink) Relabeled(ctx context.Context, id string, labels []string) error {
	_, err := g.s.db.SetOriginLabels(ctx, g.r.claim.Source.ID, id, labels)
	return err
}

// Deleted marks a message deleted at its source; the stored email is kept
// and shows when it was deleted there.
func (g *sourceSink) Deleted(ctx context.Context, id string) error {
	_, err := g.s.db.MarkOriginDeleted(ctx, g.r.claim.Source.ID, id)
	return err
}

// Listed stamps the stored messages a full sync listed.
func (g *sourceSink) Listed(ctx context.Context, sync uint64, ids []string) error {
	return g.s.db.MarkOriginsListed(ctx, g.r.claim.Source.ID, int64(sync), ids)
}

// Unlisted returns the stored messages a full sync has not listed.
func (g *sourceSink) Unlisted(ctx context.Context, sync uint64) ([]string, error) {
	return g.s.db.UnlistedOrigins(ctx, g.r.claim.Source.ID, int64(sync))
}

// IMAP authentication modes (sources.config "auth").
const (
	imapAuthPassword = "password"
	imapAuthXOAuth2  = "xoauth2"
)

// imapSync runs one IMAP sync with the source's credentials: secret is the
// password, or for auth "xoauth2" a googleoauth.Grant (JSON) whose token is
// refreshed with golang.org/x/oauth2 and persisted, encrypted, whenever it
// changes, while the run holds its claim. When the server rejects an OAuth
// access token that has a refresh token, the token is refreshed once and
// the login retried.
func (s *Service) imapSync(ctx context.Context, claim store.Claim, secret []byte, cfg imapsync.Config, cur imapsync.Cursor, sink imapsync.Sink) (imapsync.Stats, error) {
	src := claim.Source
	log := s.log.With("source", src.ID)
	var mode struct {
		Auth string `json:"auth"`
	}
	_ = json.Unmarshal(src.Config, &mode)
	if mode.Auth == "" || mode.Auth == imapAuthPassword {
		cfg.Password = string(secret)
		return imapsync.Sync(ctx, cfg, cur, sink, log)
	}
	if mode.Auth != imapAuthXOAuth2 {
		return imapsync.Stats{}, fmt.Errorf("imap source: unknown auth %q", mode.Auth)
	}
	var g googleoauth.Grant
	if err := json.Unmarshal(secret, &g); err != nil {
		return imapsync.Stats{}, fmt.Errorf("%w: stored OAuth grant unreadable", ErrNoCredentials)
	}
	if err := g.Validate(); err != nil {
		return imapsync.Stats{}, fmt.Errorf("%w: %v", ErrNoCredentials, err)
	}
	persist := func(ctx context.Context, tok *oauth2.Token) error {
		g.Token = tok
		b, err := json.Marshal(g)
		if err != nil {
			return fmt.Errorf("encode grant: %w", err)
		}
		sealed, err := s.SealSecret(src.ID, b)
		if err != nil {
			return err
		}
		// Fenced by the run: credentials the user replaced meanwhile win.
		return s.db.SetRunSecret(ctx, src.ID, claim.RunID, sealed)
	}
	run := func(tok *oauth2.Token) (imapsync.Stats, error) {
		ts := googleoauth.PersistingTokenSource(ctx, s.http, g.OAuth2(), tok, persist)
		cfg.Token = func(context.Context) (string, error) {
			t, err := ts.Token()
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		}
		return imapsync.Sync(ctx, cfg, cur, sink, log)
	}
	st, err := run(g.Token)
	if errors.Is(err, imapsync.ErrAuth) && g.Token.RefreshToken != "" {
		// The provider may revoke an access token before its expiry: force
		// one refresh (a revoked grant then surfaces as ErrReconnectNeeded).
		log.InfoContext(ctx, "imap rejected the access token; refreshing it once", "err", err)
		stale := *g.Token
		stale.Expiry = time.Now().Add(-time.Minute)
		st, err = run(&stale)
	}
	return st, err
}
