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
	"github.com/ownyou/home/pkg/search"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func newTestServer(t *testing.T) (*Server, *store.DB) {
	t.Helper()
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	s, err := New(Config{HTTPAddr: "127.0.0.1:0", AdminToken: testAdminToken}, app.Deps{DB: db, Bus: b, Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ln.Close() })
	return s, db
}

func get(t *testing.T, h http.Handler, url string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: %d %q: %v", url, rec.Code, rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestSearchEndpoint(t *testing.T) {
	s, db := newTestServer(t)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, e := range []store.Email{
		{MessageID: "<1@x>", ContentHash: "1", Subject: "Flight confirmation", FromAddr: "noreply@airline.example", SentAt: &at, BodyText: "Your flight to Lisbon departs at 09:40."},
		{MessageID: "<2@x>", ContentHash: "2", Subject: "Dinner", FromAddr: "friend@home.example", SentAt: &at, BodyText: "Shall we meet in Porto?"},
	} {
		if _, err := db.InsertEmail(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	h := asAdmin(s.Handler())
	tests := []struct {
		name, url string
		status    int
		check     func(t *testing.T, body map[string]any)
	}{
		{"keyword hit with highlighted snippet", "/api/v1/search?q=lisbon&mode=keyword", 200, func(t *testing.T, b map[string]any) {
			hits := b["hits"].([]any)
			if len(hits) != 1 {
				t.Fatalf("hits %v", hits)
			}
			h := hits[0].(map[string]any)
			if h["subject"] != "Flight confirmation" || !strings.Contains(h["snippet_html"].(string), "<mark>Lisbon</mark>") || h["retrievers"].([]any)[0] != search.RetrieverKeyword {
				t.Fatalf("hit %v", h)
			}
		}},
		{"sender filter excludes", "/api/v1/search?q=lisbon&mode=keyword&from=friend", 200, func(t *testing.T, b map[string]any) {
			if hits := b["hits"].([]any); len(hits) != 0 {
				t.Fatalf("hits %v", hits)
			}
		}},
		{"date filter excludes", "/api/v1/search?q=lisbon&mode=keyword&before=2026-02-01", 200, func(t *testing.T, b map[string]any) {
			if hits := b["hits"].([]any); len(hits) != 0 {
				t.Fatalf("hits %v", hits)
			}
		}},
		{"hybrid without embedder degrades with a warning", "/api/v1/search?q=lisbon", 200, func(t *testing.T, b map[string]any) {
			w, _ := b["warnings"].([]any)
			if len(b["hits"].([]any)) != 1 || len(w) != 1 || !strings.Contains(w[0].(string), "semantic search unavailable") {
				t.Fatalf("body %v", b)
			}
		}},
		{"semantic without embedder is 503", "/api/v1/search?q=lisbon&mode=semantic", 503, errorCode("embedder_unavailable")},
		{"missing q", "/api/v1/search", 400, errorCode("bad_query")},
		{"bad mode", "/api/v1/search?q=x&mode=fuzzy", 400, errorCode("bad_query")},
		{"bad limit", "/api/v1/search?q=x&limit=0", 400, errorCode("bad_query")},
		{"bad date", "/api/v1/search?q=x&after=yesterday", 400, errorCode("bad_query")},
		{"inverted range", "/api/v1/search?q=x&after=2026-03-02&before=2026-03-01", 400, errorCode("bad_query")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := get(t, h, tc.url)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			tc.check(t, body)
		})
	}
}

func errorCode(code string) func(*testing.T, map[string]any) {
	return func(t *testing.T, b map[string]any) {
		t.Helper()
		e, _ := b["error"].(map[string]any)
		if e == nil || e["code"] != code || e["message"] == "" {
			t.Fatalf("body %v, want error code %s", b, code)
		}
	}
}
