package mailparse

import (
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// RawMessage is one raw message pulled out of a file. When Err is set the
// message was skipped (Raw is nil) and the reader moved on.
type RawMessage struct {
	Index        int       // 0-based position in the file
	Offset       int64     // byte offset where the message (or its mbox From line) starts
	Name         string    // zip entry or file name, when known
	Raw          []byte    // raw RFC 5322 bytes, mbox escaping removed
	Size         int64     // raw size in bytes, also counted for skipped messages
	EnvelopeDate time.Time // date from the mbox "From " line, zero if none
	Err          error     // per-message problem (wraps ErrTooLarge); the file goes on
}

// Reader yields raw messages one by one from a file without holding more
// than one message in memory. Next returns io.EOF after the last message;
// any other error means the file itself cannot be read further. A Reader is
// not safe for concurrent use; BytesRead may be called from any goroutine.
type Reader interface {
	Next() (*RawMessage, error)
	BytesRead() int64
}

// ReaderOptions tune the file readers.
type ReaderOptions struct {
	MaxSize int64 // per-message cap; 0 means DefaultMaxSize, <0 means none
	// MboxO selects mboxo unescaping (">From " → "From " only) instead of
	// mboxrd (one '>' removed from any ">+From " line).
	MboxO bool
}

func (o ReaderOptions) maxSize() int64 {
	if o.MaxSize == 0 {
		return DefaultMaxSize
	}
	return o.MaxSize
}

// countingReader counts bytes consumed from the underlying reader.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// MboxReader streams messages out of an mbox file (mboxrd, mboxo, Google
// Takeout; LF or CRLF line ends).
type MboxReader struct {
	cr      *countingReader
	br      *bufio.Reader
	opts    ReaderOptions
	index   int
	pos     int64  // bytes of lines handed out so far
	next    []byte // the pending "From " line that opens the next message
	nextPos int64
	started bool
	done    bool
}

// NewMboxReader returns a streaming mbox reader over r.
func NewMboxReader(r io.Reader, opts ReaderOptions) *MboxReader {
	cr := &countingReader{r: r}
	return &MboxReader{cr: cr, br: bufio.NewReaderSize(cr, 64<<10), opts: opts}
}

// BytesRead reports how many bytes of the file have been consumed.
func (m *MboxReader) BytesRead() int64 { return m.cr.n.Load() }

// readFragment returns the next line or, for lines longer than the buffer,
// a fragment of it; complete reports whether the fragment ends the line.
// The returned slice is only valid until the next call.
func (m *MboxReader) readFragment() (frag []byte, complete bool, err error) {
	frag, err = m.br.ReadSlice('\n')
	m.pos += int64(len(frag))
	switch {
	case err == nil:
		return frag, true, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return frag, false, nil
	case err == io.EOF && len(frag) > 0:
		return frag, true, nil
	default:
		return frag, true, err
	}
}

func isFromLine(b []byte) bool { return bytes.HasPrefix(b, []byte("From ")) }

// Next returns the next message; see Reader.
func (m *MboxReader) Next() (*RawMessage, error) {
	if m.done {
		return nil, io.EOF
	}
	cap := m.opts.maxSize()
	msg := &RawMessage{Index: m.index}
	var buf bytes.Buffer
	tooLarge := false
	var size int64
	lastBlank := 0 // length of a trailing blank line in buf, dropped before the next From line
	atLineStart := true

	if !m.started {
		m.started = true
		frag, complete, err := m.readFragment()
		if err == io.EOF {
			m.done = true
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("read mbox: %w", err)
		}
		if isFromLine(frag) && complete {
			m.next = append(m.next[:0], frag...)
			m.nextPos = 0
		} else {
			// No envelope line: the file starts straight with headers.
			msg.Offset = 0
			buf.Write(frag)
			size += int64(len(frag))
			atLineStart = complete
		}
	}
	if m.next != nil {
		msg.Offset = m.nextPos
		msg.EnvelopeDate = parseFromLineDate(m.next)
		m.next = nil
	}

	for {
		lineStartPos := m.pos
		frag, complete, err := m.readFragment()
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read mbox: %w", err)
		}
		if err == io.EOF && len(frag) == 0 {
			m.done = true
			break
		}
		if atLineStart && complete && isFromLine(frag) {
			m.next = append(m.next[:0], frag...)
			m.nextPos = lineStartPos
			if !tooLarge {
				buf.Truncate(buf.Len() - lastBlank)
			}
			size -= int64(lastBlank)
			break
		}
		if atLineStart {
			frag = m.unescape(frag)
		}
		size += int64(len(frag))
		if complete && (bytes.Equal(frag, []byte("\n")) || bytes.Equal(frag, []byte("\r\n"))) {
			lastBlank = len(frag)
		} else {
			lastBlank = 0
		}
		if !tooLarge {
			if cap > 0 && size > cap {
				tooLarge = true
				buf = bytes.Buffer{} // release what was held
			} else {
				buf.Write(frag)
			}
		}
		atLineStart = complete
		if err == io.EOF {
			m.done = true
			break
		}
	}
	m.index++
	msg.Size = size
	if tooLarge {
		msg.Err = &ParseError{Kind: ErrTooLarge, Detail: fmt.Sprintf("%d bytes > cap %d", size, cap), Size: size}
		return msg, nil
	}
	msg.Raw = buf.Bytes()
	return msg, nil
}

// unescape removes mbox quoting from a line start.
func (m *MboxReader) unescape(line []byte) []byte {
	if len(line) < 6 || line[0] != '>' {
		return line
	}
	if m.opts.MboxO {
		if bytes.HasPrefix(line, []byte(">From ")) {
			return line[1:]
		}
		return line
	}
	i := 0
	for i < len(line) && line[i] == '>' {
		i++
	}
	if bytes.HasPrefix(line[i:], []byte("From ")) {
		return line[1:]
	}
	return line
}

var fromLineLayouts = []string{
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04 2006",
}

// parseFromLineDate extracts the date from an mbox "From sender date" line;
// Takeout writes "From 1234@xxx Wed Mar 04 10:15:22 +0000 2020".
func parseFromLineDate(line []byte) time.Time {
	f := strings.Fields(string(line))
	if len(f) < 3 {
		return time.Time{}
	}
	s := strings.Join(f[2:], " ")
	for _, l := range fromLineLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// EMLReader yields the single message of an .eml file.
type EMLReader struct {
	cr   *countingReader
	name string
	opts ReaderOptions
	done bool
}

// NewEMLReader returns a reader for one .eml message read from r.
func NewEMLReader(r io.Reader, name string, opts ReaderOptions) *EMLReader {
	return &EMLReader{cr: &countingReader{r: r}, name: name, opts: opts}
}

// BytesRead reports how many bytes have been consumed.
func (e *EMLReader) BytesRead() int64 { return e.cr.n.Load() }

// Next returns the message once, then io.EOF.
func (e *EMLReader) Next() (*RawMessage, error) {
	if e.done {
		return nil, io.EOF
	}
	e.done = true
	return readCapped(e.cr, 0, e.name, e.opts.maxSize())
}

// readCapped reads one message from r, skipping (draining) it with an
// ErrTooLarge record when it is larger than cap.
func readCapped(r io.Reader, index int, name string, cap int64) (*RawMessage, error) {
	msg := &RawMessage{Index: index, Name: name}
	var src io.Reader = r
	if cap > 0 {
		src = io.LimitReader(r, cap+1)
	}
	raw, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	msg.Size = int64(len(raw))
	if cap > 0 && int64(len(raw)) > cap {
		n, err := io.Copy(io.Discard, r)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		msg.Size += n
		msg.Err = &ParseError{Kind: ErrTooLarge, Detail: fmt.Sprintf("%d bytes > cap %d", msg.Size, cap), Size: msg.Size}
		return msg, nil
	}
	msg.Raw = raw
	return msg, nil
}

// ZipReader yields every .eml entry of a zip archive, one at a time.
type ZipReader struct {
	files []*zip.File
	i     int
	index int
	opts  ReaderOptions
	read  atomic.Int64
}

// NewZipReader opens a zip archive of .eml files; entries with other
// extensions are ignored.
func NewZipReader(ra io.ReaderAt, size int64, opts ReaderOptions) (*ZipReader, error) {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, fmt.Errorf("open zip: %w", err)
	}
	z := &ZipReader{opts: opts}
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() && strings.EqualFold(filepath.Ext(f.Name), ".eml") {
			z.files = append(z.files, f)
		}
	}
	return z, nil
}

// BytesRead reports the compressed bytes of the entries handled so far.
func (z *ZipReader) BytesRead() int64 { return z.read.Load() }

// Next returns the next .eml entry; see Reader.
func (z *ZipReader) Next() (*RawMessage, error) {
	if z.i >= len(z.files) {
		return nil, io.EOF
	}
	f := z.files[z.i]
	z.i++
	idx := z.index
	z.index++
	defer z.read.Add(int64(f.CompressedSize64))
	cap := z.opts.maxSize()
	if cap > 0 && f.UncompressedSize64 > uint64(cap) {
		return &RawMessage{Index: idx, Name: f.Name, Size: int64(f.UncompressedSize64),
			Err: &ParseError{Kind: ErrTooLarge, Detail: fmt.Sprintf("%d bytes > cap %d", f.UncompressedSize64, cap), Size: int64(f.UncompressedSize64)}}, nil
	}
	rc, err := f.Open()
	if err != nil {
		return &RawMessage{Index: idx, Name: f.Name, Err: fmt.Errorf("open zip entry %s: %w", f.Name, err)}, nil
	}
	defer rc.Close()
	msg, err := readCapped(rc, idx, f.Name, cap)
	if err != nil {
		// A corrupt entry (bad checksum, truncated) is that entry's error only.
		return &RawMessage{Index: idx, Name: f.Name, Err: err}, nil
	}
	return msg, nil
}

// FileKind is the detected kind of an import file.
type FileKind string

// Known import file kinds.
const (
	KindMbox FileKind = "mbox"
	KindEML  FileKind = "eml"
	KindZip  FileKind = "zip"
)

// DetectKind sniffs an import file's kind from its first bytes, falling back
// to the file extension.
func DetectKind(name string, head []byte) FileKind {
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return KindZip
	case bytes.HasPrefix(head, []byte("From ")):
		return KindMbox
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".mbox", ".mbx":
		return KindMbox
	case ".zip":
		return KindZip
	}
	return KindEML
}

// OpenFile opens an import file of any supported kind. The caller closes the
// returned closer once it is done with the Reader.
func OpenFile(path string, opts ReaderOptions) (Reader, FileKind, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("open import file: %w", err)
	}
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, "", nil, fmt.Errorf("seek import file: %w", err)
	}
	kind := DetectKind(path, head[:n])
	switch kind {
	case KindZip:
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, "", nil, fmt.Errorf("stat import file: %w", err)
		}
		zr, err := NewZipReader(f, st.Size(), opts)
		if err != nil {
			f.Close()
			return nil, "", nil, err
		}
		return zr, kind, f, nil
	case KindMbox:
		return NewMboxReader(f, opts), kind, f, nil
	default:
		return NewEMLReader(f, filepath.Base(path), opts), kind, f, nil
	}
}
