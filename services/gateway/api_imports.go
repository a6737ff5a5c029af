package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// createImport streams the multipart field "file" (an mbox or one .eml) into
// the import bucket, records the import and asks the ingest service to run it.
// It answers 202 with the import; its progress is at GET /api/v1/imports/{id}.
func (s *Server) createImport(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_upload", "expected multipart/form-data with a field named file: "+err.Error())
		return
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			writeError(w, r, http.StatusBadRequest, "bad_upload", "no field named file in the upload")
			return
		}
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "bad_upload", "read upload: "+err.Error())
			return
		}
		if part.FormName() != "file" {
			continue
		}
		s.storeUpload(w, r, part, filepath.Base(part.FileName()))
		return
	}
}

func (s *Server) storeUpload(w http.ResponseWriter, r *http.Request, body io.Reader, filename string) {
	ctx := r.Context()
	id := newID("imp")
	if err := s.db.CreateImport(ctx, id, filename, store.ImportUploading, 0); err != nil {
		s.fail(w, r, err)
		return
	}
	objects, err := s.bus.ImportObjects(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	info, err := objects.Put(ctx, jetstream.ObjectMeta{Name: id, Description: filename}, body)
	if err != nil {
		_ = s.db.FinishImport(ctx, id, store.ImportProgress{}, store.ImportFailed, "upload failed: "+err.Error())
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, r, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the file is larger than the %d-byte upload limit (OWNYOU_MAX_UPLOAD_BYTES)", tooBig.Limit))
			return
		}
		s.fail(w, r, fmt.Errorf("store upload: %w", err))
		return
	}
	if err := s.db.QueueImport(ctx, id, int64(info.Size)); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := bus.Publish(ctx, s.bus, bus.ImportsRequested, id, bus.ImportRequested{ImportID: id, Object: id, Filename: filename}); err != nil {
		s.fail(w, r, err)
		return
	}
	im, err := s.db.GetImport(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/imports/"+id)
	writeJSON(w, http.StatusAccepted, im)
}

func (s *Server) getImport(w http.ResponseWriter, r *http.Request) {
	im, err := s.db.GetImport(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, im)
}

// newID returns a random id with a readable prefix.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// listImports answers GET /api/v1/imports: the 50 newest imports with progress.
func (s *Server) listImports(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.Pool.Query(r.Context(), `SELECT id FROM imports ORDER BY created_at DESC LIMIT 50`)
	if err != nil {
		s.fail(w, r, fmt.Errorf("list imports: %w", err))
		return
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			s.fail(w, r, fmt.Errorf("list imports: %w", err))
			return
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]store.Import, 0, len(ids))
	for _, id := range ids {
		im, err := s.db.GetImport(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, im)
	}
	writeJSON(w, http.StatusOK, map[string]any{"imports": out})
}
