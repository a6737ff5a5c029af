package taxonomy

import (
	"os"
	"path/filepath"
	"testing"
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
