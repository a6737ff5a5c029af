package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func profileServer(t *testing.T) (http.Handler, *store.DB) {
	t.Helper()
	db := testkit.DB(t)
	s, err := New(Config{HTTPAddr: "127.0.0.1:0", AdminToken: testAdminToken}, app.Deps{DB: db, Bus: testkit.NATS(t, nil), Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ln.Close() })
	ctx := context.Background()
	exec := func(q string, args ...any) {
		if _, err := db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	exec(`INSERT INTO emails (id, message_id, content_hash, subject, sort_at) VALUES ('m1','m1','h1','Your flight to Paris',$1),('m2','m2','h2','Hotel booked',$2)`, at, at.Add(time.Hour))
	exec(`INSERT INTO classifications (email_id, taxonomy, category_id, confidence, evidence, judgement, backend, model, prompt_version) VALUES
		('m1','content-3.1','653',0.8,'Your flight to Paris','explicit','llm','m','llm-v1'),
		('m2','content-3.1','653',0.7,'Hotel booked','contextual','llm','m','llm-v1'),
		('m1','audience-1.1','49',0.6,'Ms','contextual','llm','m','llm-v1'),
		('m2','audience-1.1','50',0.3,'Mr','weak','llm','m','llm-v1')`)
	exec(`INSERT INTO profile (taxonomy, category_id, section, confidence, raw_confidence, evidence_count, last_evidence_at, path, group_key, is_primary) VALUES
		('content-3.1','653','content',0.83,0.83,2,$1,'Travel','',false),
		('audience-1.1','49','demographics',0.5,0.5,1,$1,'Demographic > Gender > Female','gender',true),
		('audience-1.1','50','demographics',0.3,0.3,1,$1,'Demographic > Gender > Male','gender',false)`, at)
	exec(`INSERT INTO classifier_status (id, backend, model, budget_level) VALUES ('classifier','llm','m','warn')`)
	return asAdmin(s.Handler()), db
}

type profileBody struct {
	Classifier store.ClassifierStatus `json:"classifier"`
	Categories []struct {
		store.ProfileCategory
		Evidence []struct {
			EmailID string `json:"email_id"`
			Link    string `json:"link"`
			Excerpt string `json:"excerpt"`
		} `json:"evidence"`
	} `json:"categories"`
	Groups []profileGroup `json:"groups"`
}

func getProfileBody(t *testing.T, h http.Handler, query string) (int, profileBody) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/profile"+query, nil))
	var b profileBody
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Code, b
}

func TestProfileListsCategoriesWithEvidenceLinksAndGroups(t *testing.T) {
	h, _ := profileServer(t)
	code, b := getProfileBody(t, h, "")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if b.Classifier.Backend != "llm" || b.Classifier.BudgetLevel != "warn" {
		t.Errorf("classifier status = %+v", b.Classifier)
	}
	var travel *store.ProfileCategory
	for i, c := range b.Categories {
		if c.CategoryID == "653" {
			travel = &b.Categories[i].ProfileCategory
			ev := b.Categories[i].Evidence
			if len(ev) != 2 || ev[0].EmailID != "m2" || ev[0].Link != "/api/v1/emails/m2" || ev[1].Excerpt != "Your flight to Paris" {
				t.Errorf("travel evidence = %+v", ev)
			}
		}
	}
	if travel == nil || travel.Path != "Travel" || travel.EvidenceCount != 2 {
		t.Fatalf("travel = %+v", travel)
	}
	if len(b.Groups) != 1 || b.Groups[0].Primary != "49" || len(b.Groups[0].Alternatives) != 1 || b.Groups[0].Alternatives[0] != "50" {
		t.Errorf("groups = %+v", b.Groups)
	}
	if code, _ := getProfileBody(t, h, "?evidence=abc"); code != http.StatusBadRequest {
		t.Errorf("bad evidence param: status %d", code)
	}
}

func TestDisputeRemovesACategoryFromItsGroup(t *testing.T) {
	h, _ := profileServer(t)
	cases := []struct {
		path, body string
		want       int
	}{
		{"/api/v1/profile/audience-1.1/49/dispute", "", http.StatusOK},
		{"/api/v1/profile/audience-1.1/99999/dispute", "", http.StatusNotFound},
		{"/api/v1/profile/audience-1.1/49/dispute", "{bad", http.StatusBadRequest},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", c.path, strings.NewReader(c.body)))
		if rec.Code != c.want {
			t.Errorf("POST %s %q: status %d, want %d (%s)", c.path, c.body, rec.Code, c.want, rec.Body)
		}
	}
	_, b := getProfileBody(t, h, "")
	for _, c := range b.Categories {
		if c.CategoryID == "49" && (!c.Disputed || c.Confidence != 0) {
			t.Errorf("disputed category = %+v", c.ProfileCategory)
		}
	}
	if len(b.Groups) != 1 || b.Groups[0].Primary != "50" || len(b.Groups[0].Alternatives) != 0 {
		t.Errorf("after disputing the primary, groups = %+v, want 50 primary", b.Groups)
	}
}
