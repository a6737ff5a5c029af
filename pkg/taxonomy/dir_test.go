package taxonomy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"testing"

	manifests "github.com/ownyou/home/models"
	"github.com/ownyou/home/pkg/models"
)

func TestNameGivesTierPathsAndFallsBackToTheID(t *testing.T) {
	set, err := Load(sharedIAB(t))
	if err != nil {
		t.Fatal(err)
	}
	var some *Category
	for _, c := range set.Content.All() {
		if c.Tier() >= 2 {
			some = c
			break
		}
	}
	cases := []struct {
		name     string
		set      *Set
		key, id  string
		expected string
	}{
		{"a known content category gives its tier path", set, KeyContent, some.ID, some.PathString()},
		{"an unknown id gives the id", set, KeyContent, "no-such-id", "no-such-id"},
		{"an unknown taxonomy key gives the id", set, "other-9", some.ID, some.ID},
		{"no set at all gives the id", nil, KeyContent, some.ID, some.ID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.set.Name(tc.key, tc.id); got != tc.expected {
				t.Fatalf("Name(%q, %q) = %q, want %q", tc.key, tc.id, got, tc.expected)
			}
		})
	}
}

func TestDirPrefersConfiguredThenTheModelCacheThenShared(t *testing.T) {
	data := t.TempDir()
	t.Setenv("OWNYOU_MODEL_DIR", "") // only the data dir's cache, whatever the developer has fetched
	t.Setenv("OWNYOU_SHARED_DIR", filepath.Dir(filepath.Dir(sharedIAB(t))))
	if got := Dir("/configured", data); got != "/configured" {
		t.Fatalf("configured dir ignored: %s", got)
	}
	if got := Dir("", data); got != sharedIAB(t) {
		t.Fatalf("without a fetched copy Dir = %s, want the shared copy %s", got, sharedIAB(t))
	}
	cache := filepath.Join(data, "models", "iab-taxonomies")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, AudienceFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Dir("", data); got != cache {
		t.Fatalf("with a fetched copy Dir = %s, want %s", got, cache)
	}
}

// The pinned manifest (models/iab-taxonomies.json) fetched through the real
// fetcher from a local HTTP server lands where Dir looks and loads: this is
// the path `make run` and the compose models service take.
func TestFetchedTaxonomiesAreFoundInTheModelCacheAndLoad(t *testing.T) {
	all, err := models.Load(manifests.Manifests)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := models.Select(all, "iab-taxonomies")
	if err != nil {
		t.Fatal(err)
	}
	m := sel[0]
	src := sharedIAB(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(src)))
	t.Cleanup(srv.Close)
	for i, f := range m.Files {
		m.Files[i].URL = srv.URL + "/" + path.Base(f.Path) // the TSVs carry the same names in the shared copy
	}
	cache := t.TempDir()
	t.Setenv("OWNYOU_MODEL_DIR", cache)
	t.Setenv("OWNYOU_SHARED_DIR", t.TempDir()) // no shared fallback: the fetched copy must be used
	if err := (&models.Fetcher{Dir: cache}).Fetch(context.Background(), m); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	dir := Dir("", t.TempDir())
	if want := filepath.Join(cache, FetchedDir); dir != want {
		t.Fatalf("Dir = %s, want the fetched copy %s", dir, want)
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatalf("load fetched taxonomies: %v", err)
	}
	if n := len(set.Audience.All()) + len(set.Content.All()); n < 1500 {
		t.Fatalf("fetched taxonomies hold %d categories", n)
	}
}
