package agents

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// names maps "taxonomy:category_id" to the category's tiered name
// ("Travel > Air Travel"), read from the IAB TSV files.
type names map[string]string

// taxonomyFiles are the IAB files under <shared>/data/iab and the taxonomy
// value the classifier stores for each.
var taxonomyFiles = []struct {
	taxonomy, file string
	idCol, tierCol int
}{
	{"content-3.1", "content-taxonomy-3.1.tsv", 0, 3},
	{"audience-1.1", "audience-taxonomy-1.1.tsv", 1, 4},
}

// loadNames reads the category names under dir; a missing directory gives
// an empty map (agents then see category ids) and an error to log.
func loadNames(dir string) (names, error) {
	out := names{}
	var errs []error
	for _, tf := range taxonomyFiles {
		f, err := os.Open(filepath.Join(dir, "data", "iab", tf.file))
		if err != nil {
			errs = append(errs, fmt.Errorf("taxonomy names: %w", err))
			continue
		}
		r := csv.NewReader(f)
		r.Comma, r.FieldsPerRecord, r.LazyQuotes = '\t', -1, true
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("taxonomy names %s: %w", tf.file, err))
				break
			}
			if len(rec) <= tf.tierCol {
				continue
			}
			id := strings.TrimSpace(rec[tf.idCol])
			var tiers []string
			for _, t := range rec[tf.tierCol:min(len(rec), tf.tierCol+6)] {
				if t = strings.TrimSpace(t); t != "" {
					tiers = append(tiers, t)
				}
			}
			if id == "" || len(tiers) == 0 || strings.EqualFold(id, "unique id") {
				continue
			}
			out[tf.taxonomy+":"+id] = strings.Join(tiers, " > ")
		}
		f.Close()
	}
	return out, errors.Join(errs...)
}

// name returns the category's name, or its id when unknown.
func (n names) name(taxonomy, id string) string {
	if s, ok := n[taxonomy+":"+id]; ok {
		return s
	}
	return id
}

// sharedDir is OWNYOU_SHARED_DIR, else "<repo root>/../shared" found by
// walking up from the working directory to the directory holding go.mod.
func sharedDir(configured string) string {
	if configured != "" {
		return configured
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared")
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
