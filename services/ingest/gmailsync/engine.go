// Package gmailsync mirrors a Gmail mailbox: a full sync that records the
// mailbox historyId before paging through messages.list, then incremental
// syncs from that historyId via history.list (new messages are fetched,
// label changes and deletions mirrored to the Sink), falling back to a full
// sync when Google answers 404 (history too old); the end of a full sync
// checks the stored messages it did not list, so deletions made while
// history was lost are mirrored too. Calls are paced under the
// per-user quota, throttling and server errors back off with jitter, and
// one failing message is handed to the Sink for a later retry instead of
// blocking the cursor. Persistence and publishing sit behind Sink.
package gmailsync

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gax "github.com/googleapis/gax-go/v2"
	"github.com/ownyou/home/pkg/googleoauth"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	gmail "google.golang.org/api/gmail/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// Quota costs (Gmail API usage limits, units per call).
const (
	costProfile = 1
	costList    = 5
	costGet     = 5
	costHistory = 2
)

// ErrHistoryExpired means the stored historyId is older than Gmail keeps;
// Sync handles it by running a full sync.
var ErrHistoryExpired = errors.New("gmail history expired")

// Config tunes the engine; the zero value uses the defaults.
type Config struct {
	Concurrency      int           // parallel messages.get calls; default 8
	QuotaPerMinute   int           // units/min budget; default 12,000 (80% of Gmail's 15,000 per user)
	PageSize         int64         // messages.list / history.list page size; default 500
	MaxAttempts      int           // tries per call before giving up; default 8
	BackoffInitial   time.Duration // default 1s
	BackoffMax       time.Duration // default 64s
	IncludeSpamTrash bool          // full sync includes SPAM and TRASH
	// BatchSize is how many messages.get calls share one HTTP batch
	// request; default 50 (Google's advice), 1 disables batching.
	BatchSize int
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.QuotaPerMinute <= 0 {
		c.QuotaPerMinute = 12000
	}
	if c.PageSize <= 0 {
		c.PageSize = 500
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 64 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 50
	}
	c.BatchSize = min(c.BatchSize, 100) // Gmail's hard limit per batch
	return c
}

// Cursor is the persisted sync position of one Gmail source.
type Cursor struct {
	HistoryID uint64     `json:"history_id,omitempty"` // incremental start; 0 = full sync needed
	Full      *FullState `json:"full,omitempty"`       // an unfinished full sync to resume
}

// FullState is a full sync in progress: the historyId recorded before it
// started (the incremental cursor once it completes) and the next page.
type FullState struct {
	StartHistoryID uint64 `json:"start_history_id"`
	PageToken      string `json:"page_token,omitempty"`
}

// Fetched is one raw message fetched from Gmail.
type Fetched struct {
	ID           string
	ThreadID     string
	LabelIDs     []string
	HistoryID    uint64
	InternalDate time.Time
	Raw          []byte
}

// Sink persists what the engine produces. Its methods are called
// concurrently and must be idempotent: a message may be delivered twice
// (after a crash, or from an overlapping full and incremental sync).
type Sink interface {
	// Deliver stores and publishes one message. An error is an
	// infrastructure failure: the run stops and the cursor does not move.
	Deliver(ctx context.Context, m *Fetched) error
	// Failed records a message that could not be fetched, to retry later.
	Failed(ctx context.Context, id string, err error) error
	// Retries lists message ids recorded by Failed that are due for a retry.
	Retries(ctx context.Context) ([]string, error)
	// Recovered clears a recorded failure after a successful retry.
	Recovered(ctx context.Context, id string) error
	// Relabeled replaces the labels of a stored message with labels (its
	// complete label set after a labelAdded/labelRemoved change); for a
	// message never stored it does nothing. An error stops the run.
	Relabeled(ctx context.Context, id string, labels []string) error
	// Deleted marks a stored message as deleted in Gmail, keeping the stored
	// copy; for a message never stored it does nothing. An error stops the run.
	Deleted(ctx context.Context, id string) error
	// Listed records that the full sync sync (named by its start history
	// id) listed ids, once they are delivered; ids never stored are
	// ignored. An error stops the run.
	Listed(ctx context.Context, sync uint64, ids []string) error
	// Unlisted returns the stored messages, not marked deleted, that the
	// full sync sync has not listed.
	Unlisted(ctx context.Context, sync uint64) ([]string, error)
	// SaveCursor persists the cursor at a consistent point.
	SaveCursor(ctx context.Context, c Cursor) error
	// Progress reports running totals; it doubles as the run's heartbeat.
	Progress(ctx context.Context, s Stats) error
}

// Stats are the totals of one Sync run.
type Stats struct {
	Mode      string `json:"mode"` // "full" or "incremental"
	FellBack  bool   `json:"fell_back,omitempty"`
	Pages     int    `json:"pages"`
	Listed    int    `json:"listed"`
	Delivered int    `json:"delivered"`
	Skipped   int    `json:"skipped"`             // gone before it could be fetched (deleted)
	Relabeled int    `json:"relabeled,omitempty"` // label sets mirrored
	Deleted   int    `json:"deleted,omitempty"`   // marked deleted in Gmail, kept here
	Failed    int    `json:"failed"`
	Recovered int    `json:"recovered"`
}

// Engine syncs one mailbox. Sync must not run concurrently on one Engine.
type Engine struct {
	svc      *gmail.Service
	http     *http.Client
	batchURL string
	cfg      Config
	sink     Sink
	log      *slog.Logger
	limiter  *rate.Limiter

	mu    sync.Mutex
	stats Stats
}

// DefaultEndpoint is Gmail's API root.
const DefaultEndpoint = "https://gmail.googleapis.com/"

// New returns an engine that talks to endpoint (DefaultEndpoint when "")
// through client, an HTTP client that authorizes requests (oauth2.NewClient
// over a googleoauth token source). log may be nil.
func New(ctx context.Context, client *http.Client, endpoint string, cfg Config, sink Sink, log *slog.Logger) (*Engine, error) {
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	if !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	svc, err := gmail.NewService(ctx, option.WithHTTPClient(client), option.WithEndpoint(endpoint))
	if err != nil {
		return nil, fmt.Errorf("gmail service: %w", err)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	perSec := float64(cfg.QuotaPerMinute) / 60
	// A small burst keeps the per-second rate smooth; Gmail also enforces a
	// short moving average. Batches reserve their units in burst-sized steps.
	burst := max(costGet, min(int(perSec), costGet*cfg.Concurrency))
	return &Engine{svc: svc, http: client, batchURL: endpoint + "batch/gmail/v1", cfg: cfg, sink: sink, log: log,
		limiter: rate.NewLimiter(rate.Limit(perSec), burst)}, nil
}

// Sync brings the mailbox up to date from cur: retries recorded failures,
// then runs an incremental sync, or a full one when there is no cursor, a
// full sync to resume, or expired history. It returns the run's totals;
// the cursor is persisted through the Sink as it advances.
func (e *Engine) Sync(ctx context.Context, cur Cursor) (Stats, error) {
	e.stats = Stats{}
	if err := e.retryFailures(ctx); err != nil {
		return e.snapshot(), err
	}
	if cur.HistoryID != 0 && cur.Full == nil {
		e.stats.Mode = "incremental"
		if err := e.incremental(ctx, cur.HistoryID); !errors.Is(err, ErrHistoryExpired) {
			return e.snapshot(), err
		}
		e.log.InfoContext(ctx, "gmail history expired, falling back to full sync", "history_id", cur.HistoryID)
		e.stats.FellBack = true
		cur = Cursor{}
	}
	e.stats.Mode = "full"
	err := e.full(ctx, cur.Full)
	return e.snapshot(), err
}

func (e *Engine) snapshot() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

func (e *Engine) full(ctx context.Context, st *FullState) error {
	if st == nil {
		var prof *gmail.Profile
		err := e.call(ctx, costProfile, func() (err error) {
			prof, err = e.svc.Users.GetProfile("me").Context(ctx).Do()
			return err
		})
		if err != nil {
			return fmt.Errorf("get profile: %w", err)
		}
		// Record the history id before listing: anything arriving during
		// the full sync is then picked up by the next incremental run.
		st = &FullState{StartHistoryID: prof.HistoryId}
		if err := e.sink.SaveCursor(ctx, Cursor{Full: st}); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
	}
	for {
		var resp *gmail.ListMessagesResponse
		err := e.call(ctx, costList, func() (err error) {
			c := e.svc.Users.Messages.List("me").MaxResults(e.cfg.PageSize).IncludeSpamTrash(e.cfg.IncludeSpamTrash).Context(ctx)
			if st.PageToken != "" {
				c = c.PageToken(st.PageToken)
			}
			resp, err = c.Do()
			return err
		})
		if err != nil {
			return fmt.Errorf("list messages: %w", err)
		}
		ids := make([]string, 0, len(resp.Messages))
		for _, m := range resp.Messages {
			ids = append(ids, m.Id)
		}
		if err := e.fetchAll(ctx, ids); err != nil {
			return err
		}
		if err := e.sink.Listed(ctx, st.StartHistoryID, ids); err != nil {
			return fmt.Errorf("record listed: %w", err)
		}
		next := &FullState{StartHistoryID: st.StartHistoryID, PageToken: resp.NextPageToken}
		cur := Cursor{Full: next}
		if resp.NextPageToken == "" {
			// Before the cursor turns incremental: a crash here resumes
			// from the last page and checks again.
			if err := e.reconcile(ctx, st.StartHistoryID); err != nil {
				return err
			}
			cur = Cursor{HistoryID: st.StartHistoryID}
		}
		if err := e.sink.SaveCursor(ctx, cur); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		if err := e.pageDone(ctx, len(ids)); err != nil {
			return err
		}
		if resp.NextPageToken == "" {
			return nil
		}
		st = next
	}
}

// reconcile checks, at the end of a full sync, the stored messages it did
// not list: Gmail deleted them (they are marked deleted) or they sit in spam
// or trash, outside the listing (their labels are mirrored). Incremental
// sync learns both from history; a full sync after history expired has no
// history to learn them from. A message that cannot be checked now is
// checked by the next full sync; only lost authorization, the Sink or ctx
// stop the run.
func (e *Engine) reconcile(ctx context.Context, sync uint64) error {
	ids, err := e.sink.Unlisted(ctx, sync)
	if err != nil {
		return fmt.Errorf("list unlisted: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.Concurrency)
	for _, id := range ids {
		g.Go(func() error {
			var m *gmail.Message
			err := e.call(gctx, costGet, func() (err error) {
				m, err = e.svc.Users.Messages.Get("me", id).Format("minimal").Context(gctx).Do()
				return err
			})
			switch {
			case err == nil:
				if err := e.sink.Relabeled(gctx, id, nonNil(m.LabelIds)); err != nil {
					return fmt.Errorf("relabel %s: %w", id, err)
				}
				if err := e.sink.Listed(gctx, sync, []string{id}); err != nil {
					return fmt.Errorf("record listed: %w", err)
				}
				e.count(func(s *Stats) { s.Relabeled++ })
			case isStatus(err, http.StatusNotFound):
				if err := e.sink.Deleted(gctx, id); err != nil {
					return fmt.Errorf("mark %s deleted: %w", id, err)
				}
				e.count(func(s *Stats) { s.Deleted++ })
			case fatal(gctx, err):
				return err
			default:
				e.log.WarnContext(gctx, "gmail message not checked; the next full sync checks it", "id", id, "err", err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (e *Engine) incremental(ctx context.Context, start uint64) error {
	pageToken := ""
	for {
		var resp *gmail.ListHistoryResponse
		err := e.call(ctx, costHistory, func() (err error) {
			c := e.svc.Users.History.List("me").StartHistoryId(start).
				HistoryTypes("messageAdded", "messageDeleted", "labelAdded", "labelRemoved").
				MaxResults(e.cfg.PageSize).Context(ctx)
			if pageToken != "" {
				c = c.PageToken(pageToken)
			}
			resp, err = c.Do()
			return err
		})
		if isStatus(err, http.StatusNotFound) {
			return ErrHistoryExpired
		}
		if err != nil {
			return fmt.Errorf("list history: %w", err)
		}
		var last uint64
		for _, h := range resp.History {
			last = max(last, h.Id)
		}
		ids, changes, gone := collapse(resp.History)
		if err := e.fetchAll(ctx, ids); err != nil {
			return err
		}
		e.count(func(s *Stats) { s.Skipped += gone })
		if err := e.apply(ctx, changes); err != nil {
			return err
		}
		// Mid-listing, the last record handled is a safe restart point;
		// after the last page the mailbox's historyId is.
		cur := Cursor{HistoryID: resp.HistoryId}
		if resp.NextPageToken != "" {
			cur.HistoryID = max(last, start)
		}
		if err := e.sink.SaveCursor(ctx, cur); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		if err := e.pageDone(ctx, len(ids)); err != nil {
			return err
		}
		if resp.NextPageToken == "" {
			return nil
		}
		pageToken = resp.NextPageToken
	}
}

// change is the net effect of a page of history on one message that is
// not fetched anew: its final label set, or its deletion.
type change struct {
	id      string
	labels  []string
	deleted bool
}

// collapse reduces a page of history records, in order, to the messages to
// fetch and the label changes and deletions to mirror. A message added and
// deleted within the page is not fetched (gone counts them); one added and
// relabeled is fetched with its current labels and relabeled too, which is
// harmless.
func collapse(hist []*gmail.History) (ids []string, changes []change, gone int) {
	added := map[string]bool{}
	at := map[string]int{} // id → index in changes
	set := func(c change) {
		if i, ok := at[c.id]; ok {
			if !changes[i].deleted { // a deletion is final
				changes[i] = c
			}
			return
		}
		at[c.id] = len(changes)
		changes = append(changes, c)
	}
	for _, h := range hist {
		for _, a := range h.MessagesAdded {
			if a.Message != nil && a.Message.Id != "" && !added[a.Message.Id] {
				added[a.Message.Id] = true
				ids = append(ids, a.Message.Id)
			}
		}
		for _, l := range h.LabelsAdded {
			if l.Message != nil && l.Message.Id != "" {
				set(change{id: l.Message.Id, labels: nonNil(l.Message.LabelIds)})
			}
		}
		for _, l := range h.LabelsRemoved {
			if l.Message != nil && l.Message.Id != "" {
				set(change{id: l.Message.Id, labels: nonNil(l.Message.LabelIds)})
			}
		}
		for _, d := range h.MessagesDeleted {
			if d.Message != nil && d.Message.Id != "" {
				set(change{id: d.Message.Id, deleted: true})
			}
		}
	}
	kept := ids[:0]
	for _, id := range ids {
		if i, ok := at[id]; ok && changes[i].deleted {
			gone++
			continue
		}
		kept = append(kept, id)
	}
	return kept, changes, gone
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// apply mirrors label changes and deletions through the sink.
func (e *Engine) apply(ctx context.Context, changes []change) error {
	for _, c := range changes {
		if c.deleted {
			if err := e.sink.Deleted(ctx, c.id); err != nil {
				return fmt.Errorf("mark %s deleted: %w", c.id, err)
			}
			e.count(func(s *Stats) { s.Deleted++ })
			continue
		}
		if err := e.sink.Relabeled(ctx, c.id, c.labels); err != nil {
			return fmt.Errorf("relabel %s: %w", c.id, err)
		}
		e.count(func(s *Stats) { s.Relabeled++ })
	}
	return nil
}

func (e *Engine) pageDone(ctx context.Context, listed int) error {
	e.mu.Lock()
	e.stats.Pages++
	e.stats.Listed += listed
	s := e.stats
	e.mu.Unlock()
	if err := e.sink.Progress(ctx, s); err != nil {
		return fmt.Errorf("report progress: %w", err)
	}
	return nil
}

func (e *Engine) retryFailures(ctx context.Context) error {
	ids, err := e.sink.Retries(ctx)
	if err != nil {
		return fmt.Errorf("list retries: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	return e.fetchIDs(ctx, ids, true)
}

func (e *Engine) fetchAll(ctx context.Context, ids []string) error {
	return e.fetchIDs(ctx, ids, false)
}

// fetchIDs fetches and delivers ids with bounded concurrency. A message
// that keeps failing is recorded through Sink.Failed; only infrastructure
// (Sink) errors, lost authorization or ctx end abort the batch.
func (e *Engine) fetchIDs(ctx context.Context, ids []string, retrying bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.Concurrency)
	// Batches first; items a batch could not return go to the single path,
	// which retries with backoff and classifies the failure.
	prefetched := &sync.Map{}
	if e.cfg.BatchSize > 1 && len(ids) > 1 {
		var bg errgroup.Group
		bg.SetLimit(max(1, e.cfg.Concurrency/4))
		for start := 0; start < len(ids); start += e.cfg.BatchSize {
			chunk := ids[start:min(start+e.cfg.BatchSize, len(ids))]
			bg.Go(func() error {
				if err := e.reserve(gctx, costGet*len(chunk)); err != nil {
					return err
				}
				got, _, err := e.batchGet(gctx, chunk)
				if err != nil {
					e.log.DebugContext(gctx, "gmail batch failed; fetching singly", "n", len(chunk), "err", err)
					return nil
				}
				for id, m := range got {
					prefetched.Store(id, m)
				}
				return nil
			})
		}
		if err := bg.Wait(); err != nil {
			return err
		}
	}
	for _, id := range ids {
		g.Go(func() error {
			var (
				f   *Fetched
				err error
			)
			if m, ok := prefetched.Load(id); ok {
				f, err = toFetched(m.(*gmail.Message))
			} else {
				f, err = e.fetch(gctx, id)
			}
			switch {
			case err == nil:
				if err := e.sink.Deliver(gctx, f); err != nil {
					return fmt.Errorf("deliver %s: %w", id, err)
				}
				e.count(func(s *Stats) { s.Delivered++ })
				if retrying {
					if err := e.sink.Recovered(gctx, id); err != nil {
						return fmt.Errorf("clear failure %s: %w", id, err)
					}
					e.count(func(s *Stats) { s.Recovered++ })
				}
			case isStatus(err, http.StatusNotFound):
				// Deleted since it was listed: nothing to import.
				e.count(func(s *Stats) { s.Skipped++ })
				if retrying {
					if err := e.sink.Recovered(gctx, id); err != nil {
						return fmt.Errorf("clear failure %s: %w", id, err)
					}
				}
			case fatal(gctx, err):
				return err
			default:
				e.log.WarnContext(gctx, "gmail message failed; recorded for retry", "id", id, "err", err)
				if err := e.sink.Failed(gctx, id, err); err != nil {
					return fmt.Errorf("record failure %s: %w", id, err)
				}
				e.count(func(s *Stats) { s.Failed++ })
			}
			return nil
		})
	}
	return g.Wait()
}

func (e *Engine) count(f func(*Stats)) {
	e.mu.Lock()
	f(&e.stats)
	e.mu.Unlock()
}

func (e *Engine) fetch(ctx context.Context, id string) (*Fetched, error) {
	var m *gmail.Message
	err := e.call(ctx, costGet, func() (err error) {
		m, err = e.svc.Users.Messages.Get("me", id).Format("raw").Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get message %s: %w", id, err)
	}
	return toFetched(m)
}

func toFetched(m *gmail.Message) (*Fetched, error) {
	raw, err := decodeRaw(m.Raw)
	if err != nil {
		return nil, fmt.Errorf("decode message %s: %w", m.Id, err)
	}
	return &Fetched{ID: m.Id, ThreadID: m.ThreadId, LabelIDs: m.LabelIds, HistoryID: m.HistoryId,
		InternalDate: time.UnixMilli(m.InternalDate).UTC(), Raw: raw}, nil
}

// decodeRaw decodes Gmail's base64url raw field, padded or not.
func decodeRaw(s string) ([]byte, error) {
	if b, err := base64.URLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// reserve waits until n quota units are available, in steps the limiter's
// burst admits.
func (e *Engine) reserve(ctx context.Context, n int) error {
	for n > 0 {
		step := min(n, e.limiter.Burst())
		if err := e.limiter.WaitN(ctx, step); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// call runs fn after reserving cost quota units, retrying retryable errors
// with jittered exponential backoff (honouring Retry-After).
func (e *Engine) call(ctx context.Context, cost int, fn func() error) error {
	bo := gax.Backoff{Initial: e.cfg.BackoffInitial, Max: e.cfg.BackoffMax, Multiplier: 2}
	for attempt := 1; ; attempt++ {
		if err := e.limiter.WaitN(ctx, cost); err != nil {
			return err
		}
		err := fn()
		if err == nil {
			return nil
		}
		err = classify(err)
		if !retryable(err) || attempt >= e.cfg.MaxAttempts {
			return err
		}
		d := bo.Pause()
		if ra := retryAfter(err); ra > d {
			d = min(ra, e.cfg.BackoffMax)
		}
		e.log.DebugContext(ctx, "gmail call backing off", "attempt", attempt, "delay", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// classify maps a 401 (or a revoked grant inside the token source) to
// googleoauth.ErrReconnectNeeded.
func classify(err error) error {
	if isStatus(err, http.StatusUnauthorized) {
		return fmt.Errorf("%w: %v", googleoauth.ErrReconnectNeeded, err)
	}
	return err
}

// fatal reports errors that end the whole run rather than one message.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, googleoauth.ErrReconnectNeeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		isStatus(err, http.StatusForbidden) && !isRateLimit(err)
}

func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

func isRateLimit(err error) bool {
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return false
	}
	if ge.Code == http.StatusTooManyRequests {
		return true
	}
	for _, it := range ge.Errors {
		switch it.Reason {
		case "rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded":
			return true
		}
	}
	return false
}

// retryable reports errors worth another attempt: throttling, server errors
// and transport failures.
func retryable(err error) bool {
	if errors.Is(err, googleoauth.ErrReconnectNeeded) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code >= 500 || isRateLimit(err)
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func retryAfter(err error) time.Duration {
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Header == nil {
		return 0
	}
	if s, perr := strconv.Atoi(ge.Header.Get("Retry-After")); perr == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
