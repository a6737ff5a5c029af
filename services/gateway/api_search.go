package gateway

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/search"
)

// parseSearch reads GET /api/v1/search parameters: q (required), mode
// (hybrid|semantic|keyword), limit (1–100), from (sender substring), after
// and before (RFC 3339 or YYYY-MM-DD) and category (IAB category id).
func parseSearch(v url.Values) (search.Query, error) {
	q := search.Query{Text: v.Get("q"), Mode: search.Mode(v.Get("mode")), From: v.Get("from"), Category: v.Get("category")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return q, errors.New("limit must be a number from 1 to 100")
		}
		q.Limit = n
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"after", &q.After}, {"before", &q.Before}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse(time.DateOnly, s)
		}
		if err != nil {
			return q, errors.New(p.name + " must be a date (YYYY-MM-DD) or an RFC 3339 time")
		}
		*p.dst = t
	}
	return search.Normalize(q)
}

// searchMail answers GET /api/v1/search?q=…&mode=hybrid|semantic|keyword&limit=&from=&after=&before=&category=
// with hits fused from full-text and vector retrieval (pkg/search). When the
// embedder is unavailable a hybrid search still answers from full text and
// says so in warnings; a semantic search then fails with 503.
func (s *Server) searchMail(w http.ResponseWriter, r *http.Request) {
	q, err := parseSearch(r.URL.Query())
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_query", err.Error())
		return
	}
	res, err := s.search.Search(r.Context(), q)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
	case errors.Is(err, embedclient.ErrOverloaded), errors.Is(err, embedclient.ErrUnavailable):
		writeError(w, r, http.StatusServiceUnavailable, "embedder_unavailable", "semantic search is unavailable right now: "+err.Error())
	default:
		s.fail(w, r, err)
	}
}
