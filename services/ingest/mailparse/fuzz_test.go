package mailparse

import (
	"bytes"
	"io"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that no input panics (the recover is a last resort, so
// ErrPanic counts as a failure here) and that output text is valid UTF-8.
func FuzzParse(f *testing.F) {
	for _, c := range uglyCorpus() {
		if raw := c.raw(); len(raw) < 64<<10 {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw, Options{MaxSize: 1 << 20})
		if err != nil {
			var pe *ParseError
			if !errorsAs(err, &pe) || pe.Kind == ErrPanic {
				t.Fatalf("err = %v", err)
			}
			return
		}
		if !utf8.ValidString(m.Text) || !utf8.ValidString(m.Subject) || !utf8.ValidString(m.HTML) {
			t.Fatal("invalid UTF-8 in output")
		}
	})
}

// FuzzMbox checks the mbox reader never panics and accounts for every byte.
func FuzzMbox(f *testing.F) {
	f.Add([]byte("From a Mon Jan  2 15:04:05 2006\nS: 1\n\n>From x\n\nFrom b\n\n"))
	f.Add([]byte("S: 1\r\n\r\nbody\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewMboxReader(bytes.NewReader(in), ReaderOptions{MaxSize: 64})
		for i := 0; i < 10000; i++ {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if r.BytesRead() != int64(len(in)) {
			t.Fatalf("read %d of %d bytes", r.BytesRead(), len(in))
		}
	})
}
