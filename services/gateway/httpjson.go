package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"

	"github.com/ownyou/home/pkg/store"
)

// apiError is the body of every error response.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONBytes answers 200 with an already encoded JSON body.
func writeJSONBytes(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// decodeJSON reads a JSON request body (at most 1 MiB, Content-Type
// application/json) into v, answering 415 or 400 itself and returning false
// when it cannot.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json")
		return false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_request", "expected a JSON body: "+err.Error())
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, msg
	writeJSON(w, status, e)
}

// fail translates a domain error into an HTTP response, logging the unexpected
// ones once.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, errUnauthenticated):
		writeError(w, r, http.StatusUnauthorized, "unauthenticated", "sign in, or send Authorization: Bearer <token>")
	case errors.Is(err, errBadCredentials):
		writeError(w, r, http.StatusUnauthorized, "bad_credentials", err.Error())
	case errors.Is(err, errNotSetUp):
		writeError(w, r, http.StatusConflict, "setup_needed", err.Error())
	case errors.Is(err, errAlreadySetUp):
		writeError(w, r, http.StatusConflict, "already_set_up", err.Error())
	case errors.Is(err, errBadInput):
		writeError(w, r, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, store.ErrBadCursor):
		writeError(w, r, http.StatusBadRequest, "bad_cursor", err.Error())
	case r.Context().Err() != nil:
		// the client went away; nothing to answer
	default:
		s.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		writeError(w, r, http.StatusInternalServerError, "internal", "internal error; see the gateway log")
	}
}
