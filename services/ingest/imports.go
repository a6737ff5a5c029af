package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest/intake"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// handleImport imports one uploaded file from the imports bucket. Messages
// that cannot be imported are recorded as import errors; a missing upload
// is permanent; anything else is retried by the bus (the rerun dedupes).
func (s *Service) handleImport(ctx context.Context, req bus.ImportRequested) error {
	log := s.log.With("import", req.ImportID, "file", req.Filename)
	im, err := s.db.GetImport(ctx, req.ImportID)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("import %s: no such import record", req.ImportID))
	}
	if err != nil {
		return err
	}
	if im.Status == store.ImportDone {
		return nil // already finished: a duplicate request
	}
	if err := s.db.StartImport(ctx, req.ImportID); err != nil {
		return err
	}
	prog, err := s.importObject(ctx, req)
	switch {
	case err == nil:
		if err := s.db.FinishImport(ctx, req.ImportID, toImportProgress(prog), store.ImportDone, ""); err != nil {
			return err
		}
		log.InfoContext(ctx, "import done", "messages", prog.Messages, "imported", prog.Imported, "duplicates", prog.Duplicate, "errors", prog.Errors)
		if objs, oerr := s.bus.ImportObjects(ctx); oerr == nil {
			if derr := objs.Delete(ctx, req.Object); derr != nil && !errors.Is(derr, jetstream.ErrObjectNotFound) {
				log.WarnContext(ctx, "delete imported upload", "err", derr)
			}
		}
		return nil
	case errors.Is(err, jetstream.ErrObjectNotFound):
		msg := "the uploaded file is no longer available; upload it again"
		if ferr := s.db.FinishImport(ctx, req.ImportID, toImportProgress(prog), store.ImportFailed, msg); ferr != nil {
			return ferr
		}
		return bus.Permanent(fmt.Errorf("import %s: %w", req.ImportID, err))
	default:
		// Visible as failed while the bus retries; the retry starts over.
		fctx := context.WithoutCancel(ctx)
		if ferr := s.db.FinishImport(fctx, req.ImportID, toImportProgress(prog), store.ImportFailed, "import interrupted, retrying: "+err.Error()); ferr != nil {
			log.ErrorContext(ctx, "record import failure", "err", ferr)
		}
		return fmt.Errorf("import %s: %w", req.ImportID, err)
	}
}

func toImportProgress(p intake.Progress) store.ImportProgress {
	return store.ImportProgress{BytesRead: p.BytesRead, Messages: p.Messages, Imported: p.Imported, Duplicates: p.Duplicate, Errors: p.Errors}
}

func (s *Service) importObject(ctx context.Context, req bus.ImportRequested) (intake.Progress, error) {
	objs, err := s.bus.ImportObjects(ctx)
	if err != nil {
		return intake.Progress{}, err
	}
	obj, err := objs.Get(ctx, req.Object)
	if err != nil {
		return intake.Progress{}, err
	}
	defer obj.Close()
	r, cleanup, err := s.openReader(obj, req.Filename)
	if err != nil {
		return intake.Progress{}, err
	}
	defer cleanup()
	rec := &importRecorder{s: s, id: req.ImportID}
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

// importRecorder writes an import's progress and message errors.
type importRecorder struct {
	s    *Service
	id   string
	errs atomic.Int64
}

func (r *importRecorder) Progress(ctx context.Context, p intake.Progress) error {
	return r.s.db.UpdateImportProgress(ctx, r.id, toImportProgress(p))
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
