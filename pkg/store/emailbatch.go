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

// insertEmailsWithOrigins stores a chunk of emails (those not stored yet)
// with their origins (counting new origins on their sources) in one
// statement, and answers per input row (by ordinal) whether the email still
// needs its emails.ingested event: new, or stored earlier but never marked
// published. Array-valued columns travel as array literals
// (text), since unnest cannot carry arrays of arrays; attachments as JSON text.
const insertEmailsWithOrigins = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
		$10::text[], $11::text[], $12::timestamptz[], $13::text[], $14::timestamptz[], $15::text[], $16::text[], $17::text[], $18::text[],
		$19::text[], $20::text[], $21::bigint[], $22::bytea[], $23::text[], $24::text[])
	WITH ORDINALITY AS t(id, source_id, import_id, message_id, content_hash, thread_id, subject, from_addr, from_name,
		to_lit, cc_lit, sent_at, date_source, sort_at, body_text, body_html, snippet, attachments,
		labels_lit, warnings_lit, size_bytes, raw_zstd, origin, external_id, ord)),
ins AS (
	INSERT INTO emails (id, source_id, import_id, message_id, content_hash, thread_id, subject, from_addr, from_name,
		to_addrs, cc_addrs, sent_at, date_source, sort_at, body_text, body_html, snippet, attachments, labels, warnings,
		size_bytes, raw_zstd)
	SELECT id, NULLIF(source_id, ''), NULLIF(import_id, ''), message_id, content_hash, thread_id, subject, from_addr, from_name,
		to_lit::text[], cc_lit::text[],
		sent_at, date_source, sort_at, body_text, body_html, snippet, attachments::jsonb,
		labels_lit::text[], warnings_lit::text[],
		size_bytes, raw_zstd
	FROM input ORDER BY ord
	ON CONFLICT DO NOTHING
	RETURNING id),
org AS (
	INSERT INTO email_origins (email_id, origin, source_id, import_id, external_id, labels)
	SELECT id, origin, NULLIF(source_id, ''), NULLIF(import_id, ''), external_id, labels_lit::text[]
	FROM input ORDER BY ord
	ON CONFLICT DO NOTHING
	RETURNING source_id),
counted AS (
	UPDATE sources s SET emails_count = emails_count + c.n
	FROM (SELECT source_id, count(*) AS n FROM org WHERE source_id IS NOT NULL GROUP BY source_id) c WHERE s.id = c.source_id)
SELECT i.ord, ins.id IS NOT NULL OR COALESCE(e.published_at IS NULL, false)
FROM input i LEFT JOIN ins ON ins.id = i.id LEFT JOIN emails e ON e.id = i.id`

// InsertEmails is InsertEmail plus AddEmailOrigin for a chunk of emails in one
// statement (one round trip, one transaction): either all of them and their
// origins are stored or none. needsPublish[i] answers for ws[i] as
// InsertEmail does. The same email twice in one chunk is stored once and
// reported as needing its event only once. Rows are written in id order, so
// concurrent chunks that share emails cannot deadlock.
func (db *DB) InsertEmails(ctx context.Context, ws []EmailWrite) (needsPublish []bool, err error) {
	needsPublish = make([]bool, len(ws))
	if len(ws) == 0 {
		return needsPublish, nil
	}
	order := make([]int, len(ws))
	for i := range ws {
		e := &ws[i].Email
		if e.ID == "" {
			e.ID = EmailID(e.MessageID, e.ContentHash)
		}
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(ws[a].Email.ID, ws[b].Email.ID) })
	n := len(ws)
	var (
		ids, sourceIDs, importIDs, messageIDs, hashes, threads, subjects, fromAddrs, fromNames     = col(n), col(n), col(n), col(n), col(n), col(n), col(n), col(n), col(n)
		tos, ccs, dateSources, bodies, htmls, snippets, atts, labels, warnings, origins, externals = col(n), col(n), col(n), col(n), col(n), col(n), col(n), col(n), col(n), col(n), col(n)
		sentAts                                                                                    = make([]*time.Time, n)
		sortAts                                                                                    = make([]time.Time, n)
		sizes                                                                                      = make([]int64, n)
		raws                                                                                       = make([][]byte, n)
	)
	now := time.Now().UTC()
	for k, i := range order {
		e, o := ws[i].Email, ws[i].Origin
		ids[k], sourceIDs[k], importIDs[k], messageIDs[k], hashes[k] = e.ID, o.SourceID, o.ImportID, e.MessageID, e.ContentHash
		threads[k], subjects[k], fromAddrs[k], fromNames[k], dateSources[k] = e.ThreadID, e.Subject, e.FromAddr, e.FromName, e.DateSource
		bodies[k], htmls[k], sizes[k], externals[k] = e.BodyText, e.BodyHTML, e.SizeBytes, o.ExternalID
		tos[k], ccs[k], labels[k], warnings[k] = arrayLiteral(e.To), arrayLiteral(e.Cc), arrayLiteral(o.Labels), arrayLiteral(e.Warnings)
		if atts[k], err = jsonText(nonNil(e.Attachments)); err != nil {
			return nil, fmt.Errorf("insert emails: %w", err)
		}
		sentAts[k], sortAts[k] = e.SentAt, now
		if e.SentAt != nil {
			sortAts[k] = *e.SentAt
		}
		if e.Raw != nil {
			raws[k] = db.Compress(e.Raw)
		}
		snippets[k] = e.Snippet
		if snippets[k] == "" {
			snippets[k] = Snippet(e.BodyText, 200)
		}
		origins[k] = "source:" + o.SourceID
		if o.SourceID == "" {
			origins[k] = "import:" + o.ImportID
		}
	}
	rows, err := db.Pool.Query(ctx, insertEmailsWithOrigins, ids, sourceIDs, importIDs, messageIDs, hashes, threads, subjects, fromAddrs, fromNames,
		tos, ccs, sentAts, dateSources, sortAts, bodies, htmls, snippets, atts, labels, warnings, sizes, raws, origins, externals)
	if err != nil {
		return nil, fmt.Errorf("insert emails: %w", err)
	}
	needsSorted := make([]bool, n)
	var ord int64
	var needs bool
	_, err = pgx.ForEachRow(rows, []any{&ord, &needs}, func() error {
		if ord < 1 || ord > int64(n) {
			return fmt.Errorf("row %d of %d", ord, n)
		}
		needsSorted[ord-1] = needs
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("insert emails: %w", err)
	}
	seen := make(map[string]bool, n)
	for k, i := range order {
		needsPublish[i] = needsSorted[k] && !seen[ids[k]]
		seen[ids[k]] = true
	}
	return needsPublish, nil
}

func col(n int) []string { return make([]string, n) }

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// arrayLiteral writes l as a Postgres text[] literal: every element quoted,
// backslashes and quotes escaped.
func arrayLiteral(l []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(v); j++ {
			if v[j] == '"' || v[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}
