package gateway

import (
	"net/http"
	"strconv"
)

// listEmails answers GET /api/v1/emails?limit=&cursor=: newest first, with
// next_cursor when there are more.
func (s *Server) listEmails(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, r, http.StatusBadRequest, "bad_limit", "limit must be a number from 1 to 500")
			return
		}
		limit = n
	}
	page, err := s.db.ListEmails(r.Context(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getEmail(w http.ResponseWriter, r *http.Request) {
	e, err := s.db.GetEmail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}
