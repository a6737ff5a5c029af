package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	manifests "github.com/ownyou/home/models"
)

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// blobServer serves named blobs with Range support and records the Range headers it saw.
type blobServer struct {
	*httptest.Server
	mu     sync.Mutex
	blobs  map[string][]byte
	ranges []string
}

func newBlobServer(t *testing.T, blobs map[string][]byte) *blobServer {
	s := &blobServer{blobs: blobs}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		b, ok := s.blobs[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Unix(0, 0), bytes.NewReader(b))
	}))
	t.Cleanup(s.Close)
	return s
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func oneFile(url string, data []byte) Manifest {
	return Manifest{Name: "m", Version: "1", License: "MIT", Files: []File{{Path: "m/blob.bin", URL: url, Size: int64(len(data)), SHA256: sum(data)}}}
}

func TestFetchDownloadsAndVerifies(t *testing.T) {
	data := payload(100_000)
	srv := newBlobServer(t, map[string][]byte{"/blob": data})
	f := &Fetcher{Dir: t.TempDir()}
	m := oneFile(srv.URL+"/blob", data)
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Path("m/blob.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached file differs (err %v)", err)
	}
	if err := f.Verify(m); err != nil {
		t.Fatalf("verify after fetch: %v", err)
	}
	// A second fetch finds the verified file and does not download again.
	n := len(srv.ranges)
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != n {
		t.Fatalf("second fetch made %d requests", len(srv.ranges)-n)
	}
}

func TestFetchResumesPartialDownloadWithRange(t *testing.T) {
	data := payload(100_000)
	srv := newBlobServer(t, map[string][]byte{"/blob": data})
	f := &Fetcher{Dir: t.TempDir()}
	m := oneFile(srv.URL+"/blob", data)
	dst := f.Path("m/blob.bin")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".part", data[:40_000], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != 1 || srv.ranges[0] != "bytes=40000-" {
		t.Fatalf("requests' Range headers = %q, want one resume from 40000", srv.ranges)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("resumed file differs")
	}
	if _, err := os.Stat(dst + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf(".part left behind: %v", err)
	}
}

func TestFetchRestartsWhenResumedPartialIsGarbage(t *testing.T) {
	data := payload(50_000)
	srv := newBlobServer(t, map[string][]byte{"/blob": data})
	f := &Fetcher{Dir: t.TempDir()}
	m := oneFile(srv.URL+"/blob", data)
	dst := f.Path("m/blob.bin")
	_ = os.MkdirAll(filepath.Dir(dst), 0o755)
	if err := os.WriteFile(dst+".part", bytes.Repeat([]byte{0xff}, 10_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("file differs after restart")
	}
	if len(srv.ranges) != 2 || srv.ranges[1] != "" {
		t.Fatalf("Range headers = %q, want a resume then a full download", srv.ranges)
	}
}

func TestFetchReplacesCorruptCachedFile(t *testing.T) {
	data := payload(30_000)
	srv := newBlobServer(t, map[string][]byte{"/blob": data})
	f := &Fetcher{Dir: t.TempDir()}
	m := oneFile(srv.URL+"/blob", data)
	dst := f.Path("m/blob.bin")
	_ = os.MkdirAll(filepath.Dir(dst), 0o755)
	bad := append([]byte(nil), data...)
	bad[123] ^= 1
	if err := os.WriteFile(dst, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(m); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "make models") {
		t.Fatalf("verify corrupt = %v, want ErrCorrupt naming make models", err)
	}
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
		t.Fatal("corrupt file was not replaced")
	}
}

func TestFetchWrongHashIsAClearErrorAndLeavesNoFile(t *testing.T) {
	data := payload(20_000)
	other := payload(20_000)
	other[0] ^= 0xff
	srv := newBlobServer(t, map[string][]byte{"/blob": other})
	f := &Fetcher{Dir: t.TempDir()}
	m := oneFile(srv.URL+"/blob", data)
	err := f.Fetch(context.Background(), m)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	for _, want := range []string{srv.URL + "/blob", sum(other), sum(data)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	for _, p := range []string{f.Path("m/blob.bin"), f.Path("m/blob.bin") + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after failed fetch", p)
		}
	}
}

func TestFetchHTTPErrorNamesURLAndStatus(t *testing.T) {
	srv := newBlobServer(t, nil)
	f := &Fetcher{Dir: t.TempDir()}
	err := f.Fetch(context.Background(), oneFile(srv.URL+"/missing", payload(10)))
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "/missing") {
		t.Fatalf("err = %v, want 404 naming the URL", err)
	}
}

func TestFetchUsesMirrorWithoutNetwork(t *testing.T) {
	data := payload(5000)
	mirror := t.TempDir()
	if err := os.WriteFile(filepath.Join(mirror, "blob.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Dir: t.TempDir(), Mirror: mirror}
	m := oneFile("http://127.0.0.1:1/unreachable", data)
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(m); err != nil {
		t.Fatal(err)
	}
}

func TestFetchRejectsCorruptMirrorFile(t *testing.T) {
	data := payload(5000)
	mirror := t.TempDir()
	_ = os.MkdirAll(filepath.Join(mirror, "m"), 0o755)
	if err := os.WriteFile(filepath.Join(mirror, "m", "blob.bin"), data[:4000], 0o644); err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Dir: t.TempDir(), Mirror: mirror}
	err := f.Fetch(context.Background(), oneFile("http://127.0.0.1:1/x", data))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "mirror") {
		t.Fatalf("err = %v, want ErrCorrupt from mirror", err)
	}
}

func makeTgz(t *testing.T, members map[string][]byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, b := range members {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(b)
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

func TestFetchExtractsTarballMember(t *testing.T) {
	lib := payload(7777)
	tgz := makeTgz(t, map[string][]byte{"package/README.md": []byte("hi"), "package/bin/lib.so.1": lib})
	srv := newBlobServer(t, map[string][]byte{"/pkg.tgz": tgz})
	f := &Fetcher{Dir: t.TempDir()}
	m := Manifest{Name: "ort", Version: "1", License: "MIT", Files: []File{{
		Path: "ort/pkg.tgz", URL: srv.URL + "/pkg.tgz", Size: int64(len(tgz)), SHA256: sum(tgz),
		Extract: []Extract{{Member: "package/bin/lib.so.1", To: "ort/lib.so.1.0", Size: int64(len(lib)), SHA256: sum(lib)}},
	}}}
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	p, err := f.Locate(m, "ort/lib.so.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, lib) {
		t.Fatal("extracted member differs")
	}
	// Losing the extracted file is repaired from the cached tarball.
	_ = os.Remove(p)
	if _, err := f.Locate(m, "ort/lib.so.1.0"); !errors.Is(err, ErrMissing) {
		t.Fatalf("Locate missing = %v", err)
	}
	if err := f.Fetch(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Locate(m, "ort/lib.so.1.0"); err != nil {
		t.Fatal(err)
	}
}

func TestFetchMissingTarballMemberIsAnError(t *testing.T) {
	tgz := makeTgz(t, map[string][]byte{"package/other": []byte("x")})
	srv := newBlobServer(t, map[string][]byte{"/pkg.tgz": tgz})
	f := &Fetcher{Dir: t.TempDir()}
	m := Manifest{Name: "ort", Version: "1", License: "MIT", Files: []File{{
		Path: "ort/pkg.tgz", URL: srv.URL + "/pkg.tgz", Size: int64(len(tgz)), SHA256: sum(tgz),
		Extract: []Extract{{Member: "package/bin/lib.so.1", To: "ort/lib.so", SHA256: sum(nil)}},
	}}}
	if err := f.Fetch(context.Background(), m); err == nil || !strings.Contains(err.Error(), "package/bin/lib.so.1") {
		t.Fatalf("err = %v, want missing member named", err)
	}
}

func TestLoadRejectsBadManifests(t *testing.T) {
	good := `{"name":"a","version":"1","license":"MIT","files":[{"path":"a/f","url":"http://x/f","size":1,"sha256":"` + sum(nil) + `"}]}`
	tests := []struct {
		name, body, want string
	}{
		{"unknown field", `{"name":"a","version":"1","license":"MIT","bogus":1,"files":[]}`, "bogus"},
		{"no files", `{"name":"a","version":"1","license":"MIT","files":[]}`, "no files"},
		{"absolute path", strings.Replace(good, `"a/f"`, `"/etc/passwd"`, 1), "relative"},
		{"escaping path", strings.Replace(good, `"a/f"`, `"../x"`, 1), "relative"},
		{"short sha", strings.Replace(good, sum(nil), "abc", 1), "sha256"},
		{"no license", strings.Replace(good, `"license":"MIT",`, "", 1), "license"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(fstest.MapFS{"a.json": {Data: []byte(tc.body)}})
			if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrManifest mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := Load(fstest.MapFS{"a.json": {Data: []byte(good)}}); err != nil {
		t.Fatalf("good manifest: %v", err)
	}
}

func TestProjectManifestsAreValid(t *testing.T) {
	all, err := Load(manifests.Manifests)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"all-minilm-l6-v2", "onnxruntime"} {
		if _, err := Select(all, want); err != nil {
			t.Errorf("manifest %s: %v", want, err)
		}
	}
	if _, err := Select(all, "nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Select(nope) = %v", err)
	}
}

func TestProjectManifestTokenizerFilesMatchSharedCopy(t *testing.T) {
	shared, err := SharedDir()
	if err != nil {
		t.Fatal(err)
	}
	all, _ := Load(manifests.Manifests)
	m, _ := Select(all, "all-minilm-l6-v2")
	f := &Fetcher{Dir: t.TempDir(), Mirror: filepath.Join(shared, "models")}
	tok := Manifest{Name: m[0].Name, Version: m[0].Version, License: m[0].License}
	for _, file := range m[0].Files {
		if strings.HasSuffix(file.Path, ".txt") || strings.HasSuffix(file.Path, ".json") {
			tok.Files = append(tok.Files, file)
		}
	}
	if len(tok.Files) != 2 {
		t.Fatalf("tokenizer files = %d", len(tok.Files))
	}
	if err := f.Fetch(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestFetchExtractsOnlyThePlatformsLibrary(t *testing.T) {
	x64, arm := payload(5000), payload(3000)
	tgz := makeTgz(t, map[string][]byte{"package/linux/x64/lib.so": x64, "package/linux/arm64/lib.so": arm})
	srv := newBlobServer(t, map[string][]byte{"/pkg.tgz": tgz})
	m := Manifest{Name: "ort", Version: "1", License: "MIT", Files: []File{{
		Path: "ort/pkg.tgz", URL: srv.URL + "/pkg.tgz", Size: int64(len(tgz)), SHA256: sum(tgz),
		Extract: []Extract{
			{OS: "linux", Arch: "amd64", Member: "package/linux/x64/lib.so", To: "ort/lib.so", Size: int64(len(x64)), SHA256: sum(x64)},
			{OS: "linux", Arch: "arm64", Member: "package/linux/arm64/lib.so", To: "ort/linux-arm64/lib.so", Size: int64(len(arm)), SHA256: sum(arm)},
		},
	}}}
	for _, tc := range []struct{ arch, want, absent string }{{"arm64", "ort/linux-arm64/lib.so", "ort/lib.so"}, {"amd64", "ort/lib.so", "ort/linux-arm64/lib.so"}} {
		t.Run(tc.arch, func(t *testing.T) {
			f := &Fetcher{Dir: t.TempDir(), GOOS: "linux", GOARCH: tc.arch}
			if err := f.Fetch(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if err := f.Verify(m); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Locate(m, tc.want); err != nil {
				t.Errorf("%s library not extracted: %v", tc.arch, err)
			}
			if _, err := os.Stat(f.Path(tc.absent)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the other platform's library was extracted too (%v)", err)
			}
		})
	}
}
