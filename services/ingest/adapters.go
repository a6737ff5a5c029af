package ingest

import (
	"context"
	"fmt"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
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
	if _, err := e.db.AddEmailOrigin(ctx, store.EmailOrigin{EmailID: em.ID, SourceID: em.Origin.SourceID, ImportID: em.Origin.ImportID,
		ExternalID: em.Origin.ExternalID, Labels: em.Origin.Labels}); err != nil {
		return false, err
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

// Relabeled mirrors a Gmail label change onto the stored email (a no-op
// for a message never stored).
func (g *gmailSink) Relabeled(ctx context.Context, id string, labels []string) error {
	_, err := g.s.db.SetOriginLabels(ctx, g.r.claim.Source.ID, id, labels)
	return err
}

// Deleted marks a message deleted in Gmail; the stored email is kept and
// shows when it was deleted at its source.
func (g *gmailSink) Deleted(ctx context.Context, id string) error {
	_, err := g.s.db.MarkOriginDeleted(ctx, g.r.claim.Source.ID, id)
	return err
}
