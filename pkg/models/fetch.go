package models

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Fetcher fills a model cache directory. It is safe for concurrent use on
// different files; two processes fetching the same file may both download it
// but the atomic rename keeps the cache consistent.
type Fetcher struct {
	// Dir is the cache root.
	Dir string
	// Mirror is an optional offline directory; a file is taken from
	// Mirror/<path> or Mirror/<base name> before trying its URL.
	Mirror string
	// Client downloads files; nil means http.DefaultClient.
	Client *http.Client
	// Log receives progress; nil means slog.Default().
	Log *slog.Logger
	// GOOS and GOARCH choose the extracts fetched and verified; empty means
	// the running platform's (runtime.GOOS, runtime.GOARCH).
	GOOS, GOARCH string
	// Progress, when set, is told the bytes of a file written so far and
	// its size, as a download or copy goes on; called from one goroutine.
	Progress func(path string, done, size int64)
}

// platform is the GOOS/GOARCH whose extracts f fetches.
func (f *Fetcher) platform() (string, string) {
	goos, goarch := f.GOOS, f.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	return goos, goarch
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return http.DefaultClient
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

// Path returns where file p of the manifests lives in the cache.
func (f *Fetcher) Path(p string) string { return filepath.Join(f.Dir, filepath.FromSlash(p)) }

// Fetch makes every file of m (and its extracted member) present and verified.
func (f *Fetcher) Fetch(ctx context.Context, m Manifest) error {
	goos, goarch := f.platform()
	for _, file := range m.Files {
		if err := f.fetchFile(ctx, m.Name, file); err != nil {
			return fmt.Errorf("fetch %s: %w", m.Name, err)
		}
		for _, x := range file.ExtractsFor(goos, goarch) {
			if err := f.extract(m.Name, file, x); err != nil {
				return fmt.Errorf("fetch %s: %w", m.Name, err)
			}
		}
	}
	return nil
}

// Verify checks that every file of m is present with the pinned size and
// sha256; errors wrap ErrMissing or ErrCorrupt and name the fetch command.
func (f *Fetcher) Verify(m Manifest) error {
	goos, goarch := f.platform()
	for _, file := range m.Files {
		if err := verifyFile(f.Path(file.Path), file.Size, file.SHA256); err != nil {
			return fmt.Errorf("model %s: %w (run `%s` or `go run ./cmd/models fetch %s`)", m.Name, err, FetchCommand, m.Name)
		}
		for _, x := range file.ExtractsFor(goos, goarch) {
			if err := verifyFile(f.Path(x.To), x.Size, x.SHA256); err != nil {
				return fmt.Errorf("model %s: %w (run `%s` or `go run ./cmd/models fetch %s`)", m.Name, err, FetchCommand, m.Name)
			}
		}
	}
	return nil
}

// Locate returns the cache path of file p of m after verifying it (p may be a
// File.Path or an Extract.To); the error names the command that fixes it.
func (f *Fetcher) Locate(m Manifest, p string) (string, error) {
	for _, file := range m.Files {
		size, sum := file.Size, file.SHA256
		if file.Path != p {
			i := slices.IndexFunc(file.Extract, func(x Extract) bool { return x.To == p })
			if i < 0 {
				continue
			}
			size, sum = file.Extract[i].Size, file.Extract[i].SHA256
		}
		full := f.Path(p)
		if err := verifyFile(full, size, sum); err != nil {
			return "", fmt.Errorf("model %s: %w (run `%s` or `go run ./cmd/models fetch %s`)", m.Name, err, FetchCommand, m.Name)
		}
		return full, nil
	}
	return "", fmt.Errorf("%w: %s has no file %q", ErrManifest, m.Name, p)
}

// fetchFile ensures file is in the cache: keep a verified copy, otherwise
// copy from the mirror or download (resuming a .part file).
func (f *Fetcher) fetchFile(ctx context.Context, name string, file File) error {
	dst := f.Path(file.Path)
	err := verifyFile(dst, file.Size, file.SHA256)
	if err == nil {
		f.log().Debug("model file ok", "model", name, "path", dst)
		return nil
	}
	if !errors.Is(err, ErrMissing) {
		f.log().Warn("replacing corrupt model file", "model", name, "path", dst, "err", err)
		if err := os.Remove(dst); err != nil {
			return fmt.Errorf("remove corrupt %s: %w", dst, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	if src := f.mirrorFile(file.Path); src != "" {
		f.log().Info("copying model file from mirror", "model", name, "from", src, "to", dst)
		if err := copyVerified(src, dst, file.Size, file.SHA256); err != nil {
			return fmt.Errorf("from mirror %s: %w", src, err)
		}
		return nil
	}
	f.log().Info("downloading model file", "model", name, "url", file.URL, "to", dst)
	return f.download(ctx, file, dst)
}

func (f *Fetcher) mirrorFile(p string) string {
	if f.Mirror == "" {
		return ""
	}
	for _, cand := range []string{filepath.Join(f.Mirror, filepath.FromSlash(p)), filepath.Join(f.Mirror, path.Base(p))} {
		if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() {
			return cand
		}
	}
	return ""
}

// download fetches file.URL into dst+".part", resuming with an HTTP Range
// request when a shorter partial file exists, and renames it into place once
// size and sha256 match. A partial file that turns out wrong is discarded
// and the download restarted once from zero.
func (f *Fetcher) download(ctx context.Context, file File, dst string) error {
	part := dst + ".part"
	for attempt := 0; attempt < 2; attempt++ {
		if err := f.downloadPart(ctx, file, part); err != nil {
			return err
		}
		err := verifyFile(part, file.Size, file.SHA256)
		if err == nil {
			if err := os.Rename(part, dst); err != nil {
				return fmt.Errorf("install %s: %w", dst, err)
			}
			return nil
		}
		_ = os.Remove(part)
		if attempt == 1 {
			return fmt.Errorf("download %s: %w", file.URL, err)
		}
		f.log().Warn("downloaded file does not verify; restarting from zero", "url", file.URL, "err", err)
	}
	return nil
}

func (f *Fetcher) downloadPart(ctx context.Context, file File, part string) error {
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
		if have >= file.Size {
			// Complete or over-long partial: start again.
			_ = os.Remove(part)
			have = 0
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, file.URL, nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", file.URL, err)
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return fmt.Errorf("download %s: %w", file.URL, err)
	}
	defer resp.Body.Close()
	flags := os.O_CREATE | os.O_WRONLY
	switch {
	case have > 0 && resp.StatusCode == http.StatusPartialContent:
		var start int64
		if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-", &start); err != nil || start != have {
			return fmt.Errorf("download %s: server resumed at %q, want byte %d", file.URL, resp.Header.Get("Content-Range"), have)
		}
		flags |= os.O_APPEND
		f.log().Info("resuming download", "url", file.URL, "from", have)
	case resp.StatusCode == http.StatusOK:
		flags |= os.O_TRUNC
	default:
		return fmt.Errorf("download %s: HTTP %s", file.URL, resp.Status)
	}
	out, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	// Never write more than the pinned size: a wrong server cannot fill the disk.
	limit := file.Size + 1
	start := int64(0)
	if flags&os.O_APPEND != 0 {
		limit = file.Size - have + 1
		start = have
	}
	var dst io.Writer = out
	if f.Progress != nil {
		dst = &progressWriter{w: out, done: start, size: file.Size, report: func(done, size int64) { f.Progress(file.Path, done, size) }}
		f.Progress(file.Path, start, file.Size)
	}
	_, cpErr := io.Copy(dst, io.LimitReader(resp.Body, limit))
	if err := out.Close(); cpErr == nil {
		cpErr = err
	}
	if cpErr != nil {
		return fmt.Errorf("download %s: %w (partial file kept; rerun to resume)", file.URL, cpErr)
	}
	return nil
}

// extract copies member x out of file, the verified tarball.
func (f *Fetcher) extract(name string, file File, x Extract) error {
	dst := f.Path(x.To)
	if err := verifyFile(dst, x.Size, x.SHA256); err == nil {
		return nil
	}
	src := f.Path(file.Path)
	f.log().Info("extracting model file", "model", name, "member", x.Member, "to", dst)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer in.Close()
	br := bufio.NewReader(in)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("extract %s: %w", src, err)
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("extract %s: %w: member %q not in archive", src, ErrCorrupt, x.Member)
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", src, err)
		}
		if strings.TrimPrefix(hdr.Name, "./") != x.Member {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("extract %s: member %q is not a regular file", src, x.Member)
		}
		return writeVerified(tr, dst, x.Size, x.SHA256, 0o755)
	}
}

func copyVerified(src, dst string, size int64, sum string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeVerified(in, dst, size, sum, 0o644)
}

// writeVerified streams r into dst+".part", checks size/sha256 and renames.
func writeVerified(r io.Reader, dst string, size int64, sum string, mode os.FileMode) error {
	part := dst + ".part"
	out, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, cpErr := io.Copy(io.MultiWriter(out, h), r)
	if err := out.Close(); cpErr == nil {
		cpErr = err
	}
	if cpErr == nil {
		cpErr = checkSum(dst, n, hex.EncodeToString(h.Sum(nil)), size, sum)
	}
	if cpErr != nil {
		_ = os.Remove(part)
		return cpErr
	}
	return os.Rename(part, dst)
}

// verifyFile hashes p; size 0 means "any size".
func verifyFile(p string, size int64, sum string) error {
	fh, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrMissing, p)
	}
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if size > 0 && st.Size() != size {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrCorrupt, p, st.Size(), size)
	}
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return fmt.Errorf("hash %s: %w", p, err)
	}
	return checkSum(p, n, hex.EncodeToString(h.Sum(nil)), size, sum)
}

func checkSum(p string, n int64, got string, size int64, want string) error {
	if size > 0 && n != size {
		return fmt.Errorf("%w: %s is %d bytes, want %d", ErrCorrupt, p, n, size)
	}
	if got != want {
		return fmt.Errorf("%w: %s has sha256 %s, want %s", ErrCorrupt, p, got, want)
	}
	return nil
}

// progressWriter counts what passes through it and reports every MiB.
type progressWriter struct {
	w          io.Writer
	done, size int64
	last       int64
	report     func(done, size int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if p.done-p.last >= 1<<20 || p.done >= p.size {
		p.last = p.done
		p.report(p.done, p.size)
	}
	return n, err
}
