package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/ownyou/home/pkg/store"
)

// profileEvidence is an evidence link in GET /api/v1/profile.
type profileEvidence struct {
	store.ProfileEvidence
	Link string `json:"link"` // the email in this API
}

// profileCategory is one category in GET /api/v1/profile.
type profileCategory struct {
	store.ProfileCategory
	Evidence []profileEvidence `json:"evidence"`
}

// profileGroup shows one mutually exclusive group: the primary value and the alternatives.
type profileGroup struct {
	Group        string   `json:"group"`
	Primary      string   `json:"primary"`      // category id
	Alternatives []string `json:"alternatives"` // category ids, by confidence
}

// getProfile answers GET /api/v1/profile[?evidence=N]: the user's IAB profile
// with confidences, exclusive groups, evidence links and the classifier status.
func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	n := 5
	if v := r.URL.Query().Get("evidence"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 0 || k > 50 {
			writeError(w, r, http.StatusBadRequest, "bad_evidence", "evidence must be a number from 0 to 50")
			return
		}
		n = k
	}
	ctx := r.Context()
	cats, err := s.db.Profile(ctx, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status, err := s.db.GetClassifierStatus(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	out := make([]profileCategory, 0, len(cats))
	groups := []profileGroup{}
	gidx := map[string]int{}
	for _, c := range cats {
		pc := profileCategory{ProfileCategory: c, Evidence: make([]profileEvidence, 0, len(c.Evidence))}
		for _, e := range c.Evidence {
			pc.Evidence = append(pc.Evidence, profileEvidence{ProfileEvidence: e, Link: "/api/v1/emails/" + e.EmailID})
		}
		out = append(out, pc)
		if c.Group == "" || c.Disputed {
			continue
		}
		i, ok := gidx[c.Group]
		if !ok {
			i = len(groups)
			gidx[c.Group] = i
			groups = append(groups, profileGroup{Group: c.Group, Alternatives: []string{}})
		}
		// Rows come by confidence: the first undisputed member is the primary.
		if groups[i].Primary == "" {
			groups[i].Primary = c.CategoryID
		} else {
			groups[i].Alternatives = append(groups[i].Alternatives, c.CategoryID)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"classifier": status, "categories": out, "groups": groups})
}

// disputeCategory answers POST /api/v1/profile/{taxonomy}/{id}/dispute with
// body {"disputed": true|false} (default true): a disputed category shows
// confidence 0 and stops contributing to the profile.
func (s *Server) disputeCategory(w http.ResponseWriter, r *http.Request) {
	body := struct {
		Disputed *bool `json:"disputed"`
	}{}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&body); err != nil {
			writeError(w, r, http.StatusBadRequest, "bad_body", "body must be {\"disputed\": true|false}")
			return
		}
	}
	disputed := body.Disputed == nil || *body.Disputed
	tax, id := r.PathValue("taxonomy"), r.PathValue("id")
	if err := s.db.SetDisputed(r.Context(), tax, id, disputed); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"taxonomy": tax, "category_id": id, "disputed": disputed})
}
