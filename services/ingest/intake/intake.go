// Package intake turns one raw message from any source into a stored,
// deduplicated email and an emails.ingested event: parse with mailparse,
// derive a deterministic email id from Message-ID + content hash, compress
// the raw bytes for replay, upsert, and publish once. Storage and
// publishing sit behind small interfaces implemented by the ingest service.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// Origin says where a raw message came from.
type Origin struct {
	SourceID   string // sources.id
	ImportID   string // imports.id for file imports, else ""
	ExternalID string // provider key: Gmail id, "folder/uidvalidity/uid", "file#index"
	Labels     []string
	// FallbackDate is used when the message has no usable Date/Received
	// header: Gmail internalDate, IMAP INTERNALDATE, mbox From line.
	FallbackDate time.Time
}

// Email is the normalized record handed to the Store.
type Email struct {
	ID            string // deterministic: same Message-ID + content hash → same id
	Origin        Origin
	Msg           *mailparse.Message
	RawZstd       []byte // zstd-compressed raw message
	RawSize       int64
	ParseWarnings []string
}

// Store persists emails. Implementations must be safe for concurrent use.
type Store interface {
	// UpsertEmail inserts e unless an email with e.ID exists, and records
	// e.Origin as one more occurrence either way. It reports whether the
	// email still needs its emails.ingested event (new, or published never
	// confirmed).
	UpsertEmail(ctx context.Context, e *Email) (needsPublish bool, err error)
	// MarkPublished records that the event for id was acknowledged.
	MarkPublished(ctx context.Context, id string) error
}

// Publisher publishes emails.ingested; the bus dedupes by Msg-Id = email id.
type Publisher interface {
	PublishIngested(ctx context.Context, e *Email) error
}

// Result is the outcome of one Process call.
type Result struct {
	EmailID   string
	Published bool // an event was published by this call
}

// ErrUnparseable wraps a *mailparse.ParseError: the message is recorded as
// an import error and skipped; it is not an infrastructure failure.
var ErrUnparseable = errors.New("unparseable message")

// Processor runs the intake steps. It is safe for concurrent use.
type Processor struct {
	store Store
	pub   Publisher
	opts  mailparse.Options
	encs  sync.Pool
}

// New returns a Processor; opts tunes parsing (size cap, text bounds).
func New(store Store, pub Publisher, opts mailparse.Options) *Processor {
	return &Processor{store: store, pub: pub, opts: opts}
}

// EmailID derives the email id from the dedupe key (Message-ID + content
// hash), formatted as a UUID so it fits a uuid or text column.
func EmailID(messageID, contentHash string) string {
	sum := sha256.Sum256([]byte("ownyou-email\x00" + messageID + "\x00" + contentHash))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x80 // version 8: custom, name-based
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Process parses, stores and publishes one raw message. A parse failure
// returns an error wrapping ErrUnparseable (and the *mailparse.ParseError);
// any other error is an infrastructure failure worth retrying. Processing
// the same message twice stores it once and publishes it once.
func (p *Processor) Process(ctx context.Context, o Origin, raw []byte) (Result, error) {
	opts := p.opts
	opts.FallbackDate = o.FallbackDate
	msg, err := mailparse.Parse(raw, opts)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnparseable, err)
	}
	e := &Email{
		ID:            EmailID(msg.MessageID, msg.ContentHash),
		Origin:        o,
		Msg:           msg,
		RawZstd:       p.compress(raw),
		RawSize:       int64(len(raw)),
		ParseWarnings: msg.Warnings,
	}
	needs, err := p.store.UpsertEmail(ctx, e)
	if err != nil {
		return Result{EmailID: e.ID}, fmt.Errorf("store email: %w", err)
	}
	if !needs {
		return Result{EmailID: e.ID}, nil
	}
	if err := p.pub.PublishIngested(ctx, e); err != nil {
		return Result{EmailID: e.ID}, fmt.Errorf("publish email: %w", err)
	}
	if err := p.store.MarkPublished(ctx, e.ID); err != nil {
		return Result{EmailID: e.ID, Published: true}, fmt.Errorf("mark published: %w", err)
	}
	return Result{EmailID: e.ID, Published: true}, nil
}

func (p *Processor) compress(raw []byte) []byte {
	enc, _ := p.encs.Get().(*zstd.Encoder)
	if enc == nil {
		// Errors only come from invalid options, which are constant here.
		enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	}
	out := enc.EncodeAll(raw, make([]byte, 0, len(raw)/3+64))
	p.encs.Put(enc)
	return out
}

// Decompress restores a raw message stored by Process, for pipeline replays.
func Decompress(z []byte) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd reader: %w", err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(z, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress raw: %w", err)
	}
	return raw, nil
}
