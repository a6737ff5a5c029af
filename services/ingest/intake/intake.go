// Package intake turns one raw message from any source into a stored,
// deduplicated email and an emails.ingested event: parse with mailparse,
// derive a deterministic email id from Message-ID + content hash, keep the
// raw bytes for replay, upsert, and publish once. Storage and
// publishing sit behind small interfaces implemented by the ingest service.
package intake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// Origin says where a raw message came from.
type Origin struct {
	SourceID   string // sources.id
	ImportID   string // imports.id for file imports, else ""
	ExternalID string // provider key: Gmail id, "folder/uidvalidity/uid", "file#index"
	ThreadID   string // provider thread id (Gmail), when known
	Labels     []string
	// FallbackDate is used when the message has no usable Date/Received
	// header: Gmail internalDate, IMAP INTERNALDATE, mbox From line.
	FallbackDate time.Time
}

// Email is the normalized record handed to the Store.
type Email struct {
	ID     string // deterministic: same Message-ID + content hash → same id
	Origin Origin
	Msg    *mailparse.Message
	Raw    []byte // the original message, kept (compressed by the store) for replays
}

// Store persists emails. Implementations must be safe for concurrent use.
type Store interface {
	// UpsertEmail inserts e unless an email with e.ID exists, and records
	// e.Origin as one more occurrence either way. It reports whether the
	// email still needs its emails.ingested event (new, or published never
	// confirmed).
	UpsertEmail(ctx context.Context, e *Email) (needsPublish bool, err error)
	// MarkPublished records that the events for ids were acknowledged.
	MarkPublished(ctx context.Context, ids ...string) error
}

// BatchStore is a Store that can store a chunk of emails in one round trip;
// ImportStream uses it when the Store implements it.
type BatchStore interface {
	Store
	// UpsertEmails is UpsertEmail for every email of es in one transaction
	// (all stored or none); needsPublish[i] answers for es[i], and an email
	// that appears twice in es needs its event only once.
	UpsertEmails(ctx context.Context, es []*Email) (needsPublish []bool, err error)
}

// Publisher publishes emails.ingested; the bus dedupes by Msg-Id = email id.
type Publisher interface {
	PublishIngested(ctx context.Context, e *Email) error
}

// BatchPublisher is a Publisher that can publish a chunk of events without
// waiting for each acknowledgement in turn; ImportStream uses it when the
// Publisher implements it.
type BatchPublisher interface {
	Publisher
	// PublishIngestedBatch returns nil only once every event of es is
	// acknowledged by the bus; on error any subset may be published.
	PublishIngestedBatch(ctx context.Context, es []*Email) error
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
}

// New returns a Processor; opts tunes parsing (size cap, text bounds).
func New(store Store, pub Publisher, opts mailparse.Options) *Processor {
	return &Processor{store: store, pub: pub, opts: opts}
}

// EmailID derives the email id from the dedupe key (Message-ID + content
// hash); it is store.EmailID, so every writer agrees on it.
func EmailID(messageID, contentHash string) string { return store.EmailID(messageID, contentHash) }

// Process parses, stores, publishes and marks one raw message published. A parse failure
// returns an error wrapping ErrUnparseable (and the *mailparse.ParseError);
// any other error is an infrastructure failure worth retrying. Processing
// the same message twice stores it once and publishes it once.
func (p *Processor) Process(ctx context.Context, o Origin, raw []byte) (Result, error) {
	res, err := p.ProcessUnmarked(ctx, o, raw)
	if err != nil || !res.Published {
		return res, err
	}
	if err := p.store.MarkPublished(ctx, res.EmailID); err != nil {
		return res, fmt.Errorf("mark published: %w", err)
	}
	return res, nil
}

// ProcessUnmarked is Process without the final bookkeeping: when
// Result.Published is true the caller must MarkPublished (it may batch
// them). Until then a rerun publishes the email again, under the same
// Msg-Id, which the bus dedupes and consumers treat as a repeat.
func (p *Processor) ProcessUnmarked(ctx context.Context, o Origin, raw []byte) (Result, error) {
	e, err := p.parse(o, raw)
	if err != nil {
		return Result{}, err
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
	return Result{EmailID: e.ID, Published: true}, nil
}

// parse turns raw into an Email; a parse failure wraps ErrUnparseable.
func (p *Processor) parse(o Origin, raw []byte) (*Email, error) {
	opts := p.opts
	opts.FallbackDate = o.FallbackDate
	msg, err := mailparse.Parse(raw, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnparseable, err)
	}
	return &Email{ID: EmailID(msg.MessageID, msg.ContentHash), Origin: o, Msg: msg, Raw: raw}, nil
}

// storeChunk stores a chunk of parsed emails, publishes the events they
// still need and marks those published, in that order: a failure at any
// step leaves the chunk unmarked, so storing it again (a retry, a rerun)
// publishes what was not confirmed under the same Msg-Ids. It returns how
// many emails were published and how many were already known.
func (p *Processor) storeChunk(ctx context.Context, es []*Email) (published, duplicate int, err error) {
	if len(es) == 0 {
		return 0, 0, nil
	}
	var needs []bool
	if bs, ok := p.store.(BatchStore); ok {
		if needs, err = bs.UpsertEmails(ctx, es); err != nil {
			return 0, 0, fmt.Errorf("store emails: %w", err)
		}
	} else {
		needs = make([]bool, len(es))
		seen := make(map[string]bool, len(es))
		for i, e := range es {
			n, err := p.store.UpsertEmail(ctx, e)
			if err != nil {
				return 0, 0, fmt.Errorf("store email: %w", err)
			}
			needs[i] = n && !seen[e.ID]
			seen[e.ID] = true
		}
	}
	todo := make([]*Email, 0, len(es))
	ids := make([]string, 0, len(es))
	for i, e := range es {
		if needs[i] {
			todo = append(todo, e)
			ids = append(ids, e.ID)
		}
	}
	if len(todo) > 0 {
		if bp, ok := p.pub.(BatchPublisher); ok {
			err = bp.PublishIngestedBatch(ctx, todo)
		} else {
			for _, e := range todo {
				if err = p.pub.PublishIngested(ctx, e); err != nil {
					break
				}
			}
		}
		if err != nil {
			return 0, 0, fmt.Errorf("publish emails: %w", err)
		}
		if err := p.store.MarkPublished(ctx, ids...); err != nil {
			return 0, 0, fmt.Errorf("mark published: %w", err)
		}
	}
	return len(todo), len(es) - len(todo), nil
}
