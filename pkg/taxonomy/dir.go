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

// FetchedDir is the directory under the model cache into which `models fetch
// iab-taxonomies` (models/iab-taxonomies.json) puts the TSVs.
const FetchedDir = "iab-taxonomies"

// Dir returns the directory holding the IAB TSVs: configured when set; else
// the fetched copy in the model cache ($OWNYOU_MODEL_DIR/iab-taxonomies, where
// `make run` and the compose models service put it, or
// <dataDir>/models/iab-taxonomies); else $OWNYOU_SHARED_DIR/data/iab; else
// ../shared/data/iab (the offline copy beside a checkout).
func Dir(configured, dataDir string) string {
	if configured != "" {
		return configured
	}
	shared := os.Getenv("OWNYOU_SHARED_DIR")
	if shared == "" {
		shared = filepath.Join("..", "shared")
	}
	var candidates []string
	if cache := os.Getenv("OWNYOU_MODEL_DIR"); cache != "" {
		candidates = append(candidates, filepath.Join(cache, FetchedDir))
	}
	candidates = append(candidates, filepath.Join(dataDir, "models", FetchedDir), filepath.Join(shared, "data", "iab"))
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
