package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest/intake"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// handleImport imports one uploaded file from the imports bucket as a
// fenced, heartbeated run. Messages that cannot be imported are recorded as
// import errors; a missing upload is permanent; anything else is retried by
// the bus (the rerun dedupes). A request for an import that is done, or
// that a live run is importing, is acknowledged without work.
func (s *Service) handleImport(ctx context.Context, req bus.ImportRequested) error {
	log := s.log.With("import", req.ImportID, "file", req.Filename)
	runID := newRunID()
	object := req.Object
	if object == "" {
		object = req.ImportID
	}
	attempt, err := s.db.ClaimImport(ctx, req.ImportID, runID, object, s.cfg.StaleAfter)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return bus.Permanent(fmt.Errorf("import %s: no such import record", req.ImportID))
	case errors.Is(err, store.ErrImportFinished):
		return nil // already finished: a duplicate request
	case errors.Is(err, store.ErrImportBusy):
		log.InfoContext(ctx, "import is running in a live run; request dropped")
		return nil
	case err != nil:
		return err
	}
	log = log.With("run", runID, "attempt", attempt)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rec := &importRecorder{s: s, id: req.ImportID, runID: runID, cancel: cancel}
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		rec.heartbeatEvery(ctx, s.cfg.HeartbeatEvery, log)
	}()
	prog, err := s.importObject(ctx, req, object, rec)
	cancel(nil)
	<-hbDone
	if errors.Is(context.Cause(ctx), store.ErrRunSuperseded) {
		log.WarnContext(ctx, "import run lost its claim (declared stale); stopped")
		return nil
	}
	// Record the outcome even while shutting down.
	fctx := context.WithoutCancel(ctx)
	finish := func(status, msg string) error {
		ferr := s.db.FinishImportRun(fctx, req.ImportID, runID, toImportProgress(prog), status, msg)
		if errors.Is(ferr, store.ErrRunSuperseded) {
			log.WarnContext(ctx, "import run lost its claim before recording its outcome", "status", status)
			return nil
		}
		return ferr
	}
	switch {
	case err == nil:
		if err := finish(store.ImportDone, ""); err != nil {
			return err
		}
		log.InfoContext(ctx, "import done", "messages", prog.Messages, "imported", prog.Imported, "duplicates", prog.Duplicate, "errors", prog.Errors)
		if objs, oerr := s.bus.ImportObjects(fctx); oerr == nil {
			if derr := objs.Delete(fctx, object); derr != nil && !errors.Is(derr, jetstream.ErrObjectNotFound) {
				log.WarnContext(ctx, "delete imported upload", "err", derr)
			}
		}
		return nil
	case errors.Is(err, jetstream.ErrObjectNotFound):
		if ferr := finish(store.ImportFailed, "the uploaded file is no longer available; upload it again"); ferr != nil {
			return ferr
		}
		return bus.Permanent(fmt.Errorf("import %s: %w", req.ImportID, err))
	default:
		// Visible as failed while the bus retries; the retry starts over.
		if ferr := finish(store.ImportFailed, "import interrupted, retrying: "+err.Error()); ferr != nil {
			log.ErrorContext(ctx, "record import failure", "err", ferr)
		}
		return fmt.Errorf("import %s: %w", req.ImportID, err)
	}
}

// sweepImports fails imports whose run stopped heartbeating (the process
// died or hung) and queues a retry for those under the attempt limit whose
// upload is still in the bucket; the reason and what was done about it stay
// on the import for the user.
func (s *Service) sweepImports(ctx context.Context) {
	stale, err := s.db.StaleImports(ctx, s.cfg.StaleAfter)
	if err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "stale import check failed", "err", err)
		}
		return
	}
	for _, im := range stale {
		if err := s.failStaleImport(ctx, im); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "fail stalled import", "import", im.ID, "err", err)
		}
	}
}

// failStaleImport decides whether a stalled import may be retried, records
// the failure with that outcome and, when retrying, re-requests it.
func (s *Service) failStaleImport(ctx context.Context, im store.StaleImport) error {
	limit := max(1, s.cfg.ImportAttempts)
	retry := false
	var outcome string
	if im.Attempts >= limit {
		outcome = fmt.Sprintf("gave up after %d attempts; upload the file again to retry", im.Attempts)
	} else {
		objs, err := s.bus.ImportObjects(ctx)
		if err == nil {
			_, err = objs.GetInfo(ctx, im.Object)
		}
		switch {
		case errors.Is(err, jetstream.ErrObjectNotFound):
			outcome = "the uploaded file is no longer available; upload it again"
		case err != nil:
			return fmt.Errorf("check upload: %w", err) // the next sweep tries again
		default:
			retry = true
			outcome = fmt.Sprintf("retrying (attempt %d of %d)", im.Attempts+1, limit)
		}
	}
	won, err := s.db.FailStaleImport(ctx, im.ID, s.cfg.StaleAfter, outcome)
	if err != nil || !won {
		return err
	}
	s.log.WarnContext(ctx, "import stalled; marked failed", "import", im.ID, "attempts", im.Attempts, "last_heartbeat", im.HeartbeatAt, "outcome", outcome)
	if !retry {
		return nil
	}
	// A new Msg-Id: the first request may still be inside the dedupe window.
	key := fmt.Sprintf("%s#retry-%d", im.ID, im.Attempts)
	if err := bus.Publish(ctx, s.bus, bus.ImportsRequested, key, bus.ImportRequested{ImportID: im.ID, Object: im.Object, Filename: im.Filename}); err != nil {
		msg := fmt.Sprintf("the import stopped responding and could not be retried (%v); upload the file again", err)
		if nerr := s.db.NoteImportFailure(context.WithoutCancel(ctx), im.ID, msg); nerr != nil {
			return errors.Join(err, nerr)
		}
		return err
	}
	return nil
}

func toImportProgress(p intake.Progress) store.ImportProgress {
	return store.ImportProgress{BytesRead: p.BytesRead, Messages: p.Messages, Imported: p.Imported, Duplicates: p.Duplicate, Errors: p.Errors}
}

func (s *Service) importObject(ctx context.Context, req bus.ImportRequested, object string, rec *importRecorder) (intake.Progress, error) {
	objs, err := s.bus.ImportObjects(ctx)
	if err != nil {
		return intake.Progress{}, err
	}
	obj, err := objs.Get(ctx, object)
	if err != nil {
		return intake.Progress{}, err
	}
	defer obj.Close()
	r, cleanup, err := s.openReader(obj, req.Filename)
	if err != nil {
		return intake.Progress{}, err
	}
	defer cleanup()
	origin := func(rm *mailparse.RawMessage) intake.Origin {
		return intake.Origin{ImportID: req.ImportID, ExternalID: fmt.Sprintf("%s#%d", req.Filename, rm.Index), FallbackDate: rm.EnvelopeDate}
	}
	return intake.ImportStream(ctx, r, s.proc, origin, rec, intake.StreamOptions{Workers: s.cfg.Workers})
}

// openReader spools the upload from the bucket to a temp file (reading the
// object at network speed, so a slow import never stalls the bucket's
// stream), then opens it by kind: mbox, zip of .eml, or one .eml. Only one
// message at a time is held in memory.
func (s *Service) openReader(src io.Reader, filename string) (mailparse.Reader, func(), error) {
	dir := s.tempDir()
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("spool upload: %w", err)
		}
	}
	f, err := os.CreateTemp(dir, "import-*")
	if err != nil {
		return nil, nil, fmt.Errorf("spool upload: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, src)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("spool upload: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("spool upload: %w", err)
	}
	opts := mailparse.ReaderOptions{MaxSize: s.cfg.MaxMessageBytes}
	head := make([]byte, 8)
	hn, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("spool upload: %w", err)
	}
	switch mailparse.DetectKind(filename, head[:hn]) {
	case mailparse.KindMbox:
		return mailparse.NewMboxReader(f, opts), cleanup, nil
	case mailparse.KindZip:
		zr, err := mailparse.NewZipReader(f, n, opts)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		return zr, cleanup, nil
	default:
		name := filename
		if i := strings.LastIndexAny(name, `/\`); i >= 0 {
			name = name[i+1:]
		}
		return mailparse.NewEMLReader(f, name, opts), cleanup, nil
	}
}

// importRecorder writes an import run's progress (each write a heartbeat)
// and message errors; it cancels the run when the run lost its claim.
type importRecorder struct {
	s      *Service
	id     string
	runID  string
	cancel context.CancelCauseFunc
	errs   atomic.Int64

	mu   sync.Mutex
	last intake.Progress
}

func (r *importRecorder) Progress(ctx context.Context, p intake.Progress) error {
	r.mu.Lock()
	r.last = p
	r.mu.Unlock()
	return r.beat(ctx, p)
}

func (r *importRecorder) beat(ctx context.Context, p intake.Progress) error {
	err := r.s.db.HeartbeatImport(ctx, r.id, r.runID, toImportProgress(p))
	if errors.Is(err, store.ErrRunSuperseded) {
		r.cancel(err)
	}
	return err
}

// heartbeatEvery keeps the run's heartbeat going while no progress is
// written (spooling the upload, one slow message) until ctx ends.
func (r *importRecorder) heartbeatEvery(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		p := r.last
		r.mu.Unlock()
		if err := r.beat(ctx, p); err != nil && !errors.Is(err, store.ErrRunSuperseded) && ctx.Err() == nil {
			log.WarnContext(ctx, "import heartbeat failed", "err", err)
		}
	}
}

func (r *importRecorder) MessageError(ctx context.Context, rm *mailparse.RawMessage, err error) error {
	pos := int64(rm.Index)
	if rm.Offset > 0 {
		pos = rm.Offset
	}
	msg := err.Error()
	if rm.Name != "" {
		msg = rm.Name + ": " + msg
	}
	// Keep the table bounded for a pathological file; the count stays exact.
	if r.errs.Add(1) > 10000 {
		return nil
	}
	return r.s.db.AddImportError(ctx, r.id, pos, "", msg)
}

// UpsertEmails implements intake.BatchStore: a chunk of emails with their
// origins in one round trip and one transaction.
func (e *emailStore) UpsertEmails(ctx context.Context, es []*intake.Email) ([]bool, error) {
	ws := make([]store.EmailWrite, len(es))
	for i, em := range es {
		ws[i] = store.EmailWrite{Email: toStoreEmail(em), Origin: store.EmailOrigin{SourceID: em.Origin.SourceID, ImportID: em.Origin.ImportID,
			ExternalID: em.Origin.ExternalID, Labels: em.Origin.Labels}}
	}
	return e.db.InsertEmails(ctx, ws)
}

// PublishIngestedBatch implements intake.BatchPublisher: the chunk's events
// go out without waiting for each ack in turn; it returns once all are acked.
func (p *publisher) PublishIngestedBatch(ctx context.Context, es []*intake.Email) error {
	items := make([]bus.Keyed[bus.EmailIngested], len(es))
	for i, e := range es {
		items[i] = bus.Keyed[bus.EmailIngested]{Key: e.ID, V: bus.EmailIngested{EmailID: e.ID, SourceID: e.Origin.SourceID, ImportID: e.Origin.ImportID}}
	}
	return bus.PublishBatch(ctx, p.bus, bus.EmailsIngested, items)
}
