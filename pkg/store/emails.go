package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Attachment is an attachment's metadata; its bytes stay in the raw message.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// Email is a normalized email record.
type Email struct {
	ID          string       `json:"id"`
	SourceID    string       `json:"source_id,omitempty"`
	ImportID    string       `json:"import_id,omitempty"`
	MessageID   string       `json:"message_id"`
	ContentHash string       `json:"content_hash"`
	ThreadID    string       `json:"thread_id,omitempty"`
	Subject     string       `json:"subject"`
	FromAddr    string       `json:"from_addr"`
	FromName    string       `json:"from_name"`
	To          []string     `json:"to"`
	Cc          []string     `json:"cc"`
	SentAt      *time.Time   `json:"sent_at,omitempty"`
	DateSource  string       `json:"date_source,omitempty"`
	BodyText    string       `json:"body_text,omitempty"`
	BodyHTML    string       `json:"body_html,omitempty"`
	Snippet     string       `json:"snippet"`
	Attachments []Attachment `json:"attachments"`
	Labels      []string     `json:"labels"`
	Warnings    []string     `json:"warnings"`
	SizeBytes   int64        `json:"size_bytes"`
	IngestedAt  time.Time    `json:"ingested_at"`
	// DeletedAtSource is when every source holding the email deleted it
	// there; the email is kept. Nil while some source still has it.
	DeletedAtSource *time.Time `json:"deleted_at_source,omitempty"`
	// Raw is the original message; stored compressed, never returned by lists.
	Raw []byte `json:"-"`
}

// EmailID derives an email's id from its Message-ID and content hash, so the
// same mail arriving from two sources or twice from one is stored once.
func EmailID(messageID, contentHash string) string {
	h := sha256.Sum256([]byte(messageID + "\x00" + contentHash))
	return hex.EncodeToString(h[:16])
}

// InsertEmail stores e unless an email with the same id (or the same Message-ID
// and content hash) exists. It reports whether e still needs publishing on
// emails.ingested: true for a new email, and for an existing one whose earlier
// publish never completed.
func (db *DB) InsertEmail(ctx context.Context, e Email) (needsPublish bool, err error) {
	if e.ID == "" {
		e.ID = EmailID(e.MessageID, e.ContentHash)
	}
	att, err := json.Marshal(nonNil(e.Attachments))
	if err != nil {
		return false, fmt.Errorf("insert email: %w", err)
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
	tag, err := db.Pool.Exec(ctx, `
		INSERT INTO emails (id, source_id, import_id, message_id, content_hash, thread_id, subject, from_addr, from_name,
			to_addrs, cc_addrs, sent_at, date_source, sort_at, body_text, body_html, snippet, attachments, labels, warnings,
			size_bytes, raw_zstd)
		VALUES ($1, NULLIF($2,''), NULLIF($3,''), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
		ON CONFLICT DO NOTHING`,
		e.ID, e.SourceID, e.ImportID, e.MessageID, e.ContentHash, e.ThreadID, e.Subject, e.FromAddr, e.FromName,
		nonNilS(e.To), nonNilS(e.Cc), e.SentAt, e.DateSource, sortAt, e.BodyText, e.BodyHTML, snippet, att, nonNilS(e.Labels), nonNilS(e.Warnings),
		e.SizeBytes, raw)
	if err != nil {
		return false, fmt.Errorf("insert email: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	var published *time.Time
	err = db.Pool.QueryRow(ctx, `SELECT published_at FROM emails WHERE id = $1 OR (message_id = $2 AND content_hash = $3) LIMIT 1`,
		e.ID, e.MessageID, e.ContentHash).Scan(&published)
	if err != nil {
		return false, fmt.Errorf("insert email: check existing: %w", err)
	}
	return published == nil, nil
}

// MarkPublished records that emails.ingested for the email is on the bus.
func (db *DB) MarkPublished(ctx context.Context, emailID string) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE emails SET published_at = now() WHERE id = $1 AND published_at IS NULL`, emailID); err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}

// EmailPage is one page of a newest-first email list.
type EmailPage struct {
	Emails     []Email `json:"emails"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// ErrBadCursor means a list cursor was not one this store issued.
var ErrBadCursor = errors.New("invalid cursor")

// ListEmails returns emails newest first (by sent date, else arrival), limit at
// a time; cursor is the NextCursor of the previous page, empty for the first.
func (db *DB) ListEmails(ctx context.Context, limit int, cursor string) (EmailPage, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	args := []any{limit + 1}
	where := ""
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return EmailPage{}, err
		}
		where = "WHERE (sort_at, id) < ($2, $3)"
		args = append(args, at, id)
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT id, COALESCE(source_id,''), COALESCE(import_id,''), message_id, content_hash, thread_id, subject, from_addr, from_name,
			to_addrs, cc_addrs, sent_at, date_source, snippet, attachments, labels, warnings, size_bytes, ingested_at, sort_at, deleted_at_source
		FROM emails `+where+` ORDER BY sort_at DESC, id DESC LIMIT $1`, args...)
	if err != nil {
		return EmailPage{}, fmt.Errorf("list emails: %w", err)
	}
	defer rows.Close()
	var page EmailPage
	var sortKeys []time.Time
	for rows.Next() {
		var e Email
		var att []byte
		var sortAt time.Time
		if err := rows.Scan(&e.ID, &e.SourceID, &e.ImportID, &e.MessageID, &e.ContentHash, &e.ThreadID, &e.Subject, &e.FromAddr, &e.FromName,
			&e.To, &e.Cc, &e.SentAt, &e.DateSource, &e.Snippet, &att, &e.Labels, &e.Warnings, &e.SizeBytes, &e.IngestedAt, &sortAt, &e.DeletedAtSource); err != nil {
			return EmailPage{}, fmt.Errorf("list emails: %w", err)
		}
		if err := json.Unmarshal(att, &e.Attachments); err != nil {
			return EmailPage{}, fmt.Errorf("list emails: attachments: %w", err)
		}
		page.Emails = append(page.Emails, e)
		sortKeys = append(sortKeys, sortAt)
	}
	if err := rows.Err(); err != nil {
		return EmailPage{}, fmt.Errorf("list emails: %w", err)
	}
	if len(page.Emails) > limit { // one extra row says there is a next page
		page.Emails = page.Emails[:limit]
		page.NextCursor = encodeCursor(sortKeys[limit-1], page.Emails[limit-1].ID)
	}
	if page.Emails == nil {
		page.Emails = []Email{}
	}
	return page, nil
}

// GetEmail returns one email with its bodies (not its raw message).
func (db *DB) GetEmail(ctx context.Context, id string) (Email, error) {
	var e Email
	var att []byte
	err := db.Pool.QueryRow(ctx, `
		SELECT id, COALESCE(source_id,''), COALESCE(import_id,''), message_id, content_hash, thread_id, subject, from_addr, from_name,
			to_addrs, cc_addrs, sent_at, date_source, body_text, body_html, snippet, attachments, labels, warnings, size_bytes, ingested_at, deleted_at_source
		FROM emails WHERE id = $1`, id).Scan(&e.ID, &e.SourceID, &e.ImportID, &e.MessageID, &e.ContentHash, &e.ThreadID, &e.Subject, &e.FromAddr, &e.FromName,
		&e.To, &e.Cc, &e.SentAt, &e.DateSource, &e.BodyText, &e.BodyHTML, &e.Snippet, &att, &e.Labels, &e.Warnings, &e.SizeBytes, &e.IngestedAt, &e.DeletedAtSource)
	if errors.Is(err, pgx.ErrNoRows) {
		return Email{}, fmt.Errorf("email %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Email{}, fmt.Errorf("get email: %w", err)
	}
	if err := json.Unmarshal(att, &e.Attachments); err != nil {
		return Email{}, fmt.Errorf("get email: attachments: %w", err)
	}
	return e, nil
}

// RawEmail returns an email's original message bytes.
func (db *DB) RawEmail(ctx context.Context, id string) ([]byte, error) {
	var z []byte
	err := db.Pool.QueryRow(ctx, `SELECT raw_zstd FROM emails WHERE id = $1`, id).Scan(&z)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("email %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("raw email: %w", err)
	}
	if z == nil {
		return nil, fmt.Errorf("raw email %s: not kept: %w", id, ErrNotFound)
	}
	return db.Decompress(z)
}

// Snippet returns the first n characters of text with white space folded.
func Snippet(text string, n int) string {
	s := strings.Join(strings.Fields(text), " ")
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok {
		return time.Time{}, "", ErrBadCursor
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return at, id, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilS(s []string) []string { return nonNil(s) }
