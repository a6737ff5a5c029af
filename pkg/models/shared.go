package models

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// EnvSharedDir names the read-only shared data directory (IAB taxonomies,
// tokenizer files); it defaults to "<repo root>/../shared".
const EnvSharedDir = "OWNYOU_SHARED_DIR"

// ErrNoSharedDir means neither OWNYOU_SHARED_DIR nor <repo root>/../shared exists.
var ErrNoSharedDir = errors.New("shared data directory not found (set " + EnvSharedDir + ")")

// SharedDir returns OWNYOU_SHARED_DIR, or "<repo root>/../shared" where the
// repo root is the nearest ancestor of the working directory holding go.mod.
func SharedDir() (string, error) {
	if d := os.Getenv(EnvSharedDir); d != "" {
		if _, err := os.Stat(d); err != nil {
			return "", fmt.Errorf("shared dir: %w", err)
		}
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("shared dir: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			cand := filepath.Join(filepath.Dir(dir), "shared")
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				return cand, nil
			}
			return "", ErrNoSharedDir
		}
		if filepath.Dir(dir) == dir {
			return "", ErrNoSharedDir
		}
	}
}

// ORTLibPath is the cache path, relative to the model cache directory, of
// the ONNX Runtime library the "onnxruntime" manifest extracts for goos and
// goarch (linux/amd64 and linux/arm64; "" elsewhere: no library).
func ORTLibPath(goos, goarch string) string {
	switch {
	case goos == "linux" && goarch == "amd64":
		return "onnxruntime/libonnxruntime.so.1.24.3"
	case goos == "linux" && goarch == "arm64":
		return "onnxruntime/linux-arm64/libonnxruntime.so.1.24.3"
	}
	return ""
}

// RepoRoot returns the nearest ancestor of the working directory holding go.mod.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("repo root: no go.mod above " + wd)
		}
	}
}

// CacheDir returns OWNYOU_MODEL_DIR, else $OWNYOU_DATA_DIR/models, else
// DefaultModelDir under the repo root when running inside a checkout (tests,
// go run), else relative to the working directory.
func CacheDir() string {
	if d := os.Getenv(EnvModelDir); d != "" {
		return d
	}
	if d := os.Getenv("OWNYOU_DATA_DIR"); d != "" {
		return filepath.Join(d, "models")
	}
	if root, err := RepoRoot(); err == nil {
		return filepath.Join(root, DefaultModelDir)
	}
	return DefaultModelDir
}

// EnvORTLib names the ONNX Runtime shared library to load.
const EnvORTLib = "OWNYOU_ORT_LIB"

// ORTLib returns $OWNYOU_ORT_LIB or the cache path the "onnxruntime" manifest
// fills for this platform (CacheDir()/ORTLibPath(…)); it may not exist.
func ORTLib() string {
	if l := os.Getenv(EnvORTLib); l != "" {
		return l
	}
	return filepath.Join(CacheDir(), ORTLibPath(runtime.GOOS, runtime.GOARCH))
}

// MiniLMVocab returns the all-MiniLM-L6-v2 WordPiece vocabulary: the model
// cache's copy when fetched, else the shared data directory's (tests, tools).
func MiniLMVocab() (string, error) {
	cached := filepath.Join(CacheDir(), "all-MiniLM-L6-v2", "vocab.txt")
	if _, err := os.Stat(cached); err == nil {
		return cached, nil
	}
	dir, err := SharedDir()
	if err != nil {
		return "", fmt.Errorf("all-MiniLM-L6-v2 vocabulary: not in the model cache, and %w", err)
	}
	return filepath.Join(dir, "models", "all-MiniLM-L6-v2", "vocab.txt"), nil
}
