// Package graphsync mirrors an Outlook / Microsoft 365 mailbox through
// Microsoft Graph: every mail folder is tracked with its own messages delta
// query. A folder's first round lists all its messages (the full sync); each
// later round, from the stored @odata.deltaLink, brings only what changed —
// new messages are fetched as MIME (/$value) and delivered, messages moved
// between folders are relabeled, messages removed from a folder are checked
// one by one and marked deleted when they are gone (a move shows up as a
// removal in one folder and an addition in another). A message already
// stored is never fetched again, so a resync costs listings only. When
// change tracking is lost (an expired delta token, a deleted folder) the run
// becomes a full resync whose end checks the stored messages it did not see.
// The cursor is saved after every page, so a restarted run resumes where it
// stopped. Persistence and publishing sit behind Sink, as in gmailsync.
package graphsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/msgraph"
)

// Labels of Outlook's well-known folders, named like Gmail's system labels
// so every source's mail reads the same; other folders are labeled with
// their path ("Projects/2026").
var wellKnownLabels = map[string]string{
	"inbox": "INBOX", "sentitems": "SENT", "drafts": "DRAFT",
	"deleteditems": "TRASH", "junkemail": "SPAM", "archive": "ARCHIVE",
}

// Cursor is the persisted sync position of one Outlook source.
type Cursor struct {
	// Folders holds each tracked folder's position, by folder id.
	Folders map[string]*FolderCursor `json:"folders,omitempty"`
	// Full is set while a full sync (every folder's first round) runs.
	Full *FullState `json:"full,omitempty"`
}

// FolderCursor is one folder's delta position: NextLink while a round is
// being paged, DeltaLink once it completed.
type FolderCursor struct {
	Label     string `json:"label"`
	NextLink  string `json:"next_link,omitempty"`
	DeltaLink string `json:"delta_link,omitempty"`
	// FullSync is the full sync whose first round of this folder the links
	// belong to, so a resumed full sync skips the folders it finished.
	FullSync uint64 `json:"full_sync,omitempty"`
}

// FullState names a full sync in progress; Sync stamps the stored messages
// it lists, so its end can find the ones it did not.
type FullState struct {
	Sync uint64 `json:"sync"`
}

// Fetched is one message fetched from the mailbox.
type Fetched struct {
	ID           string // immutable Graph id
	ThreadID     string // conversationId
	Labels       []string
	InternalDate time.Time // receivedDateTime
	Raw          []byte
}

// Sink persists what the engine produces. Its methods are called
// concurrently and must be idempotent: a message may be delivered twice.
type Sink interface {
	// Deliver stores and publishes one message; an error stops the run and
	// the cursor does not move.
	Deliver(ctx context.Context, m *Fetched) error
	// Stored returns which of ids are already stored for this source.
	Stored(ctx context.Context, ids []string) ([]string, error)
	// Failed records a message that could not be fetched, to retry later;
	// permanent failures (too large) are not retried.
	Failed(ctx context.Context, id string, err error, permanent bool) error
	// Retries lists message ids recorded by Failed that are due for a retry.
	Retries(ctx context.Context) ([]string, error)
	// Recovered clears a recorded failure.
	Recovered(ctx context.Context, id string) error
	// Relabeled replaces a stored message's labels (its folder now).
	Relabeled(ctx context.Context, id string, labels []string) error
	// Deleted marks a stored message deleted at the source, keeping it.
	Deleted(ctx context.Context, id string) error
	// Listed stamps stored messages as seen by the full sync sync.
	Listed(ctx context.Context, sync uint64, ids []string) error
	// Unlisted returns stored messages, not marked deleted, that the full
	// sync sync has not listed.
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
	Folders   int    `json:"folders"`
	Pages     int    `json:"pages"`
	Listed    int    `json:"listed"`
	Delivered int    `json:"delivered"`
	Known     int    `json:"known,omitempty"`   // listed again, already stored: not fetched
	Skipped   int    `json:"skipped,omitempty"` // gone before it could be fetched
	Relabeled int    `json:"relabeled,omitempty"`
	Deleted   int    `json:"deleted,omitempty"`
	Failed    int    `json:"failed"`
	Recovered int    `json:"recovered"`
}

// errResync restarts a run as a full sync.
var errResync = errors.New("change tracking lost")

// Engine syncs one mailbox. Sync must not run concurrently on one Engine.
type Engine struct {
	c    *msgraph.Client
	sink Sink
	log  *slog.Logger
	now  func() time.Time
	// concurrency bounds the MIME fetches in flight (the client bounds requests).
	concurrency int

	mu     sync.Mutex
	stats  Stats
	labels map[string]string // folder id → label, for this run
}

// New returns an engine reading through c. log may be nil; concurrency is
// the message fetches at once (default 4, Exchange's per-mailbox limit).
func New(c *msgraph.Client, sink Sink, concurrency int, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if concurrency <= 0 {
		concurrency = 4
	}
	return &Engine{c: c, sink: sink, log: log, now: time.Now, concurrency: concurrency}
}

// Sync brings the mailbox up to date from cur: retries recorded failures,
// then runs every folder's delta round (a full sync when cur has none, or a
// full sync left unfinished, or tracking was lost). It returns the run's
// totals; the cursor is persisted through the Sink as it advances.
func (e *Engine) Sync(ctx context.Context, cur Cursor) (Stats, error) {
	e.stats = Stats{Mode: "incremental"}
	if err := e.retryFailures(ctx); err != nil {
		return e.snapshot(), err
	}
	folders, err := e.c.Folders(ctx)
	if err != nil {
		return e.snapshot(), fmt.Errorf("list folders: %w", err)
	}
	e.labels = map[string]string{}
	for _, f := range folders {
		e.labels[f.ID] = label(f)
	}
	e.count(func(s *Stats) { s.Folders = len(folders) })
	if cur.Folders == nil {
		cur = Cursor{Full: e.newFull()}
	}
	err = e.round(ctx, folders, &cur)
	if errors.Is(err, errResync) {
		e.log.InfoContext(ctx, "outlook change tracking lost; running a full resync", "err", err)
		e.count(func(s *Stats) { s.FellBack = true })
		cur = Cursor{Full: e.newFull()}
		err = e.round(ctx, folders, &cur)
	}
	return e.snapshot(), err
}

func (e *Engine) newFull() *FullState { return &FullState{Sync: uint64(e.now().UnixNano())} }

// round runs one delta round over every folder and, for a full sync, the
// check of what it did not list.
func (e *Engine) round(ctx context.Context, folders []msgraph.Folder, cur *Cursor) error {
	if cur.Full != nil {
		e.count(func(s *Stats) { s.Mode = "full" })
		if cur.Folders == nil {
			cur.Folders = map[string]*FolderCursor{}
		}
		if err := e.sink.SaveCursor(ctx, *cur); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, f := range folders {
		seen[f.ID] = true
		fc := cur.Folders[f.ID]
		if fc == nil {
			fc = &FolderCursor{}
			cur.Folders[f.ID] = fc
		}
		fc.Label = e.labels[f.ID]
		if err := e.folder(ctx, f, fc, cur); err != nil {
			return err
		}
	}
	var gone []string
	for id := range cur.Folders {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 && cur.Full == nil {
		// A deleted folder's messages were deleted or moved; only moves
		// show up in other folders' rounds. Check everything.
		return fmt.Errorf("%w: folders %v were deleted", errResync, gone)
	}
	for _, id := range gone {
		delete(cur.Folders, id)
	}
	if cur.Full != nil {
		// Before the cursor turns incremental: a crash here repeats the check.
		if err := e.reconcile(ctx, cur.Full.Sync); err != nil {
			return err
		}
		cur.Full = nil
	}
	if err := e.sink.SaveCursor(ctx, *cur); err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	return nil
}

// folder pages one folder's delta round from where its cursor stands.
func (e *Engine) folder(ctx context.Context, f msgraph.Folder, fc *FolderCursor, cur *Cursor) error {
	link := fc.NextLink
	if link == "" {
		link = fc.DeltaLink
	}
	if full := cur.Full; full != nil {
		switch {
		case fc.FullSync == full.Sync && fc.NextLink == "" && fc.DeltaLink != "":
			return nil // listed by this full sync before a restart
		case fc.FullSync != full.Sync || link == "":
			fc.FullSync, fc.NextLink, fc.DeltaLink = full.Sync, "", ""
			link = e.c.InitialDelta(f.ID)
		}
	} else if link == "" {
		link = e.c.InitialDelta(f.ID) // a folder new since the last run
	}
	relisted := false
	for {
		page, err := e.c.Delta(ctx, link)
		if errors.Is(err, msgraph.ErrDeltaExpired) {
			if cur.Full != nil && !relisted {
				relisted = true
				// A full sync's own paging expired: list the folder again.
				fc.NextLink, link = "", e.c.InitialDelta(f.ID)
				continue
			}
			return fmt.Errorf("%w: folder %s: %v", errResync, f.Path, err)
		}
		if err != nil {
			return fmt.Errorf("delta %s: %w", f.Path, err)
		}
		if err := e.page(ctx, page.Items, fc.Label, cur.Full); err != nil {
			return err
		}
		if page.NextLink != "" {
			fc.NextLink = page.NextLink
		} else {
			fc.NextLink, fc.DeltaLink = "", page.DeltaLink
		}
		if err := e.sink.SaveCursor(ctx, *cur); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		e.mu.Lock()
		e.stats.Pages++
		e.stats.Listed += len(page.Items)
		st := e.stats
		e.mu.Unlock()
		if err := e.sink.Progress(ctx, st); err != nil {
			return fmt.Errorf("report progress: %w", err)
		}
		if page.NextLink == "" {
			return nil
		}
		link = page.NextLink
	}
}

// page handles one delta page: new messages are fetched and delivered,
// known ones relabeled to this folder, removals checked.
func (e *Engine) page(ctx context.Context, items []msgraph.DeltaItem, lbl string, full *FullState) error {
	var ids, removed []string
	byID := map[string]msgraph.DeltaItem{}
	for _, it := range items {
		if it.Removed != nil {
			removed = append(removed, it.ID)
			continue
		}
		ids = append(ids, it.ID)
		byID[it.ID] = it
	}
	known, err := e.sink.Stored(ctx, ids)
	if err != nil {
		return fmt.Errorf("look up stored: %w", err)
	}
	isKnown := map[string]bool{}
	for _, id := range known {
		isKnown[id] = true
		if err := e.sink.Relabeled(ctx, id, []string{lbl}); err != nil {
			return fmt.Errorf("relabel %s: %w", id, err)
		}
	}
	e.count(func(s *Stats) { s.Known += len(known) })
	var fresh []msgraph.DeltaItem
	for _, id := range ids {
		if !isKnown[id] {
			fresh = append(fresh, byID[id])
		}
	}
	if err := e.fetchAll(ctx, fresh, func(string) []string { return []string{lbl} }, false); err != nil {
		return err
	}
	if full != nil {
		if err := e.sink.Listed(ctx, full.Sync, ids); err != nil {
			return fmt.Errorf("record listed: %w", err)
		}
	}
	return e.check(ctx, removed, 0)
}

// check looks up messages that left a folder (or that a full sync did not
// list): gone ones are marked deleted, moved ones relabeled to where they
// are now. A message that cannot be checked now is checked again later (by
// the next full sync); only lost authorization, the Sink or ctx stop the run.
func (e *Engine) check(ctx context.Context, ids []string, sync uint64) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.concurrency)
	for _, id := range ids {
		g.Go(func() error {
			parent, err := e.c.MessageFolder(gctx, id)
			switch {
			case errors.Is(err, msgraph.ErrNotFound):
				if err := e.sink.Deleted(gctx, id); err != nil {
					return fmt.Errorf("mark %s deleted: %w", id, err)
				}
				e.count(func(s *Stats) { s.Deleted++ })
			case err == nil:
				if lbl, ok := e.labels[parent]; ok {
					if err := e.sink.Relabeled(gctx, id, []string{lbl}); err != nil {
						return fmt.Errorf("relabel %s: %w", id, err)
					}
					e.count(func(s *Stats) { s.Relabeled++ })
				}
				if sync != 0 {
					if err := e.sink.Listed(gctx, sync, []string{id}); err != nil {
						return fmt.Errorf("record listed: %w", err)
					}
				}
			case fatal(gctx, err):
				return err
			default:
				e.log.WarnContext(gctx, "outlook message not checked; a later sync checks it", "id", id, "err", err)
			}
			return nil
		})
	}
	return g.Wait()
}

// reconcile checks, at the end of a full sync, the stored messages it did
// not list: deleted at the source, or in a folder not tracked.
func (e *Engine) reconcile(ctx context.Context, sync uint64) error {
	ids, err := e.sink.Unlisted(ctx, sync)
	if err != nil {
		return fmt.Errorf("list unlisted: %w", err)
	}
	sort.Strings(ids)
	return e.check(ctx, ids, sync)
}

func (e *Engine) retryFailures(ctx context.Context) error {
	ids, err := e.sink.Retries(ctx)
	if err != nil {
		return fmt.Errorf("list retries: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	items := make([]msgraph.DeltaItem, 0, len(ids))
	for _, id := range ids {
		items = append(items, msgraph.DeltaItem{ID: id})
	}
	// The folder of a retried message is looked up with it.
	return e.fetchAll(ctx, items, nil, true)
}

// fetchAll fetches and delivers items with bounded concurrency. labels
// names an item's labels; nil looks its folder up (retries). A message that
// keeps failing is recorded through Sink.Failed.
func (e *Engine) fetchAll(ctx context.Context, items []msgraph.DeltaItem, labels func(string) []string, retrying bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.concurrency)
	for _, it := range items {
		g.Go(func() error {
			lbls := []string{}
			var err error
			if labels != nil {
				lbls = labels(it.ID)
			} else {
				var parent string
				if parent, err = e.c.MessageFolder(gctx, it.ID); err == nil {
					if l, ok := e.labels[parent]; ok {
						lbls = []string{l}
					}
				}
			}
			var raw []byte
			if err == nil {
				raw, err = e.c.MIME(gctx, it.ID)
			}
			switch {
			case err == nil:
				date := it.ReceivedDateTime
				if date.IsZero() {
					date = e.now().UTC()
				}
				if err := e.sink.Deliver(gctx, &Fetched{ID: it.ID, ThreadID: it.ConversationID, Labels: lbls, InternalDate: date, Raw: raw}); err != nil {
					return fmt.Errorf("deliver %s: %w", it.ID, err)
				}
				e.count(func(s *Stats) { s.Delivered++ })
				if retrying {
					if err := e.sink.Recovered(gctx, it.ID); err != nil {
						return fmt.Errorf("clear failure %s: %w", it.ID, err)
					}
					e.count(func(s *Stats) { s.Recovered++ })
				}
			case errors.Is(err, msgraph.ErrNotFound):
				e.count(func(s *Stats) { s.Skipped++ })
				if retrying {
					if err := e.sink.Recovered(gctx, it.ID); err != nil {
						return fmt.Errorf("clear failure %s: %w", it.ID, err)
					}
				}
			case fatal(gctx, err):
				return err
			default:
				e.log.WarnContext(gctx, "outlook message failed; recorded", "id", it.ID, "err", err)
				if err := e.sink.Failed(gctx, it.ID, err, errors.Is(err, msgraph.ErrTooLarge)); err != nil {
					return fmt.Errorf("record failure %s: %w", it.ID, err)
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

func (e *Engine) snapshot() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// label is the label of a folder's messages.
func label(f msgraph.Folder) string {
	if l, ok := wellKnownLabels[f.WellKnown]; ok {
		return l
	}
	return f.Path
}

// fatal reports errors that end the whole run rather than one message.
func fatal(ctx context.Context, err error) bool {
	var ge *msgraph.Error
	return ctx.Err() != nil || errors.Is(err, googleoauth.ErrReconnectNeeded) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ge) && ge.Status == 403)
}
