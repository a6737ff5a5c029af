package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// EmailWrite is one email and the place it was seen, as InsertEmails stores them.
type EmailWrite struct {
	Email  Email
	Origin EmailOrigin // EmailID is taken from Email
}

// insertEmailWithOrigin stores one email (unless it exists), records its
// origin (counting a new origin on its source) and answers whether the email
// still needs its emails.ingested event: new, or stored earlier but never
// marked published.
const insertEmailWithOrigin = `
WITH ins AS (
	INSERT INTO emails (id, source_id, import_id, message_id, content_hash, thread_id, subject, from_addr, from_name,
		to_addrs, cc_addrs, sent_at, date_source, sort_at, body_text, body_html, snippet, attachments, labels, warnings,
		size_bytes, raw_zstd)
	VALUES ($1, NULLIF($2,''), NULLIF($3,''), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
	ON CONFLICT DO NOTHING
	RETURNING id),
org AS (
	INSERT INTO email_origins (email_id, origin, source_id, import_id, external_id, labels)
	VALUES ($1, $23, NULLIF($2,''), NULLIF($3,''), $24, $25) ON CONFLICT DO NOTHING
	RETURNING source_id),
counted AS (
	UPDATE sources s SET emails_count = emails_count + 1 FROM org WHERE s.id = org.source_id)
SELECT EXISTS (SELECT 1 FROM ins)
	OR COALESCE((SELECT published_at IS NULL FROM emails WHERE id = $1 OR (message_id = $4 AND content_hash = $5) LIMIT 1), false)`

// InsertEmails is InsertEmail plus AddEmailOrigin for a chunk of emails in one
// round trip and one transaction: either all of them and their origins are
// stored or none. needsPublish[i] answers for ws[i] as InsertEmail does. The
// same email twice in one chunk is stored once and reported as needing its
// event only once. Rows are written in id order, so concurrent chunks that
// share emails cannot deadlock.
func (db *DB) InsertEmails(ctx context.Context, ws []EmailWrite) (needsPublish []bool, err error) {
	needsPublish = make([]bool, len(ws))
	if len(ws) == 0 {
		return needsPublish, nil
	}
	order := make([]int, 0, len(ws))
	seen := make(map[string]bool, len(ws))
	for i := range ws {
		e := &ws[i].Email
		if e.ID == "" {
			e.ID = EmailID(e.MessageID, e.ContentHash)
		}
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(ws[a].Email.ID, ws[b].Email.ID) })
	var batch pgx.Batch
	queued := make([]int, 0, len(ws))
	for _, i := range order {
		e, o := ws[i].Email, ws[i].Origin
		att, err := json.Marshal(nonNil(e.Attachments))
		if err != nil {
			return nil, fmt.Errorf("insert emails: %w", err)
		}
		sortAt := time.Now().UTC()
		if e.SentAt != nil {
			sortAt = *e.SentAt
		}
		var raw []byte
		if e.Raw != nil {
			raw = db.Compress(e.Raw)
		}
		snippet := e.Snippet
		if snippet == "" {
			snippet = Snippet(e.BodyText, 200)
		}
		origin := "source:" + o.SourceID
		if o.SourceID == "" {
			origin = "import:" + o.ImportID
		}
		batch.Queue(insertEmailWithOrigin,
			e.ID, o.SourceID, o.ImportID, e.MessageID, e.ContentHash, e.ThreadID, e.Subject, e.FromAddr, e.FromName,
			nonNilS(e.To), nonNilS(e.Cc), e.SentAt, e.DateSource, sortAt, e.BodyText, e.BodyHTML, snippet, att, nonNilS(e.Labels), nonNilS(e.Warnings),
			e.SizeBytes, raw, origin, o.ExternalID, nonNilS(o.Labels))
		queued = append(queued, i)
	}
	// A batch outside a transaction runs as one implicit transaction.
	br := db.Pool.SendBatch(ctx, &batch)
	for _, i := range queued {
		var needs bool
		if err := br.QueryRow().Scan(&needs); err != nil {
			br.Close()
			return nil, fmt.Errorf("insert emails: %w", err)
		}
		id := ws[i].Email.ID
		needsPublish[i] = needs && !seen[id]
		seen[id] = true
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("insert emails: %w", err)
	}
	return needsPublish, nil
}
