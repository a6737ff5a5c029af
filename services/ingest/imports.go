package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// handleImport reads an uploaded file from the object bucket and stores every
// message in it. Redelivery re-reads the file: stored emails dedupe, and an
// email whose publish never completed is published again.
func (s *Service) handleImport(ctx context.Context, req bus.ImportRequested) error {
	im, err := s.db.GetImport(ctx, req.ImportID)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("import %s: no such import record", req.ImportID))
	}
	if err != nil {
		return err
	}
	if im.Status == store.ImportDone || im.Status == store.ImportFailed {
		return nil // already finished: a duplicate request
	}
	objects, err := s.bus.ImportObjects(ctx)
	if err != nil {
		return err
	}
	obj, err := objects.Get(ctx, req.Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		msg := "the uploaded file is gone from the import bucket; upload it again"
		_ = s.db.FinishImport(ctx, req.ImportID, store.ImportProgress{}, store.ImportFailed, msg)
		return bus.Permanent(errors.New(msg))
	}
	if err != nil {
		return fmt.Errorf("open upload: %w", err)
	}
	defer obj.Close()
	if err := s.db.StartImport(ctx, req.ImportID); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "import started", "import_id", req.ImportID, "file", req.Filename)
	p, err := s.importStream(ctx, req.ImportID, obj)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: another run picks it up
		}
		if fe := s.db.FinishImport(ctx, req.ImportID, p, store.ImportFailed, err.Error()); fe != nil {
			return fe
		}
		return bus.Permanent(fmt.Errorf("import %s: %w", req.ImportID, err))
	}
	if err := s.db.FinishImport(ctx, req.ImportID, p, store.ImportDone, ""); err != nil {
		return err
	}
	if err := objects.Delete(ctx, req.Object); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		s.log.WarnContext(ctx, "delete uploaded file", "import_id", req.ImportID, "err", err)
	}
	s.log.InfoContext(ctx, "import done", "import_id", req.ImportID, "messages", p.Messages, "imported", p.Imported, "duplicates", p.Duplicates, "errors", p.Errors)
	return nil
}

// importStream splits r into messages (an mbox, or one .eml) and stores each.
// A message that cannot be stored is recorded as an import error; only a
// failure of the store or bus ends the import early.
func (s *Service) importStream(ctx context.Context, importID string, r io.Reader) (store.ImportProgress, error) {
	var p store.ImportProgress
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	head, _ := br.Peek(5)
	if bytes.HasPrefix(head, []byte("PK\x03\x04")) {
		return p, errors.New("zip archives are not supported yet: upload an mbox or a single .eml")
	}
	last := time.Now()
	err := splitMbox(br, s.cfg.MaxMessageBytes, func(n int, raw []byte, tooBig int64) error {
		p.Messages++
		p.BytesRead = cr.n
		if tooBig > 0 {
			p.Errors++
			return s.db.AddImportError(ctx, importID, int64(n), "", fmt.Sprintf("message %d is larger than the %d-byte limit (at least %d bytes); skipped", n, s.cfg.MaxMessageBytes, tooBig))
		}
		e, perr := normalize(raw)
		if perr != nil {
			p.Errors++
			return s.db.AddImportError(ctx, importID, int64(n), "", fmt.Sprintf("message %d: %v", n, perr))
		}
		e.ImportID = importID
		needsPublish, err := s.db.InsertEmail(ctx, e)
		if err != nil {
			return err
		}
		if needsPublish {
			if err := bus.Publish(ctx, s.bus, bus.EmailsIngested, e.ID, bus.EmailIngested{EmailID: e.ID, ImportID: importID}); err != nil {
				return err
			}
			if err := s.db.MarkPublished(ctx, e.ID); err != nil {
				return err
			}
			p.Imported++
		} else {
			p.Duplicates++
		}
		if time.Since(last) > progressEvery {
			last = time.Now()
			return s.db.UpdateImportProgress(ctx, importID, p)
		}
		return nil
	})
	p.BytesRead = cr.n
	return p, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
