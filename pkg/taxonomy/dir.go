package taxonomy

import (
	"os"
	"path/filepath"
)

// Keys name the taxonomies as stored in classifications.taxonomy and profile.taxonomy.
const (
	KeyAudience = "audience-1.1"
	KeyContent  = "content-3.1"
)

// Dir returns the directory holding the IAB TSVs: configured when set; else
// <dataDir>/models/iab-taxonomies when `make models` has fetched them there;
// else $OWNYOU_SHARED_DIR/data/iab; else ../shared/data/iab (the offline copy
// beside a checkout).
func Dir(configured, dataDir string) string {
	if configured != "" {
		return configured
	}
	shared := os.Getenv("OWNYOU_SHARED_DIR")
	if shared == "" {
		shared = filepath.Join("..", "shared")
	}
	candidates := []string{filepath.Join(dataDir, "models", "iab-taxonomies"), filepath.Join(shared, "data", "iab")}
	for _, d := range candidates {
		if _, err := os.Stat(filepath.Join(d, AudienceFile)); err == nil {
			return d
		}
	}
	return candidates[len(candidates)-1]
}

// ByKey returns the taxonomy stored under key (KeyAudience or KeyContent), or nil.
func (s *Set) ByKey(key string) *Taxonomy {
	switch key {
	case KeyAudience:
		return s.Audience
	case KeyContent:
		return s.Content
	}
	return nil
}

// Name returns a stored category's tier path ("Travel > Air Travel"), or its
// id when the set (which may be nil) does not know it.
func (s *Set) Name(key, id string) string {
	if s == nil {
		return id
	}
	if t := s.ByKey(key); t != nil {
		if c := t.Get(id); c != nil {
			return c.PathString()
		}
	}
	return id
}
