// Package testenv locates the data the classifier tests need (IAB
// taxonomies, wink word vectors): it skips a test with a clear message when
// the data is absent on a developer machine and fails it in CI ($CI=true).
package testenv

import (
	"context"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/pkg/wordvec"
)

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// SharedDir is $OWNYOU_SHARED_DIR or <repo root>/../shared.
func SharedDir() string {
	if d := os.Getenv("OWNYOU_SHARED_DIR"); d != "" {
		return d
	}
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared")
		}
	}
	return filepath.Join("..", "shared")
}

var (
	taxOnce sync.Once
	taxSet  *taxonomy.Set
	taxErr  error
)

// Taxonomies loads both IAB taxonomies once per test binary.
func Taxonomies(t testing.TB) *taxonomy.Set {
	t.Helper()
	dir := filepath.Join(SharedDir(), "data", "iab")
	if _, err := os.Stat(filepath.Join(dir, taxonomy.AudienceFile)); err != nil {
		missing(t, "IAB taxonomies not found in %s (set OWNYOU_SHARED_DIR): %v", dir, err)
	}
	taxOnce.Do(func() { taxSet, taxErr = taxonomy.Load(dir) })
	if taxErr != nil {
		t.Fatal(taxErr)
	}
	return taxSet
}

var (
	wvOnce  sync.Once
	wvModel *wordvec.Model
	wvErr   error
)

// WordVec opens the lite word-vector model from $OWNYOU_WORDVEC_PATH, caching
// the converted file under $OWNYOU_MODEL_DIR (default: the user cache dir).
func WordVec(t testing.TB) *wordvec.Model {
	t.Helper()
	src := os.Getenv("OWNYOU_WORDVEC_PATH")
	if src == "" {
		missing(t, "OWNYOU_WORDVEC_PATH unset: the wink vectors are needed")
	}
	wvOnce.Do(func() {
		cache := os.Getenv("OWNYOU_MODEL_DIR")
		if cache == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				base = os.TempDir()
			}
			cache = filepath.Join(base, "ownyou", "models")
		}
		wvModel, wvErr = wordvec.Open(src, cache, wordvec.Options{MaxWords: wordvec.LiteWords})
	})
	if wvErr != nil {
		t.Fatal(wvErr)
	}
	return wvModel
}

// HashEmbedder is a deterministic bag-of-words embedder (feature hashing)
// for tests that need vectors but not their quality.
type HashEmbedder struct{}

// Embed hashes each lower-cased word into one of 64 dimensions.
func (HashEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v := make([]float32, 64)
		for _, w := range wordvec.Tokenize(t) {
			h := fnv.New32a()
			h.Write([]byte(w))
			v[h.Sum32()%64]++
		}
		var n float64
		for _, x := range v {
			n += float64(x * x)
		}
		if n > 0 {
			for j := range v {
				v[j] /= float32(math.Sqrt(n))
			}
		}
		out[i] = v
	}
	return out, nil
}

// Dim is 64.
func (HashEmbedder) Dim() int { return 64 }

// ModelID is "test-hash-64".
func (HashEmbedder) ModelID() string { return "test-hash-64" }
