package embedder

import (
	"context"
	"fmt"
	"unicode"

	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/wordvec"
)

// model is an embedding model the stage runs: MiniLM (or another BERT-shaped
// graph) through ONNX Runtime, or the lite model on word vectors. Both are
// safe for concurrent use; vectors of different IDs are not comparable.
type model interface {
	// ID is stored with every vector; it changes when the weights do.
	ID() string
	// Dim is the vector length.
	Dim() int
	// EmbedEmail returns an email's vectors: chunk 0 the subject (when it has
	// words), 1… overlapping body windows with their character ranges; the
	// bool reports a body cut off after the last window.
	EmbedEmail(ctx context.Context, subject, body string) ([]store.EmbeddedChunk, bool, error)
	// TryEmbed embeds request texts, refusing with embed.ErrOverloaded
	// rather than queueing when the model is saturated.
	TryEmbed(ctx context.Context, texts []string) ([][]float32, error)
	// Close releases the model.
	Close()
}

// onnxModel is MiniLM (or a BERT-shaped graph) with word-piece windows.
type onnxModel struct {
	emb   *embed.ONNX
	chunk embed.ChunkConfig
}

func (m *onnxModel) ID() string { return m.emb.ModelID() }
func (m *onnxModel) Dim() int   { return m.emb.Dim() }
func (m *onnxModel) Close()     { _ = m.emb.Close() }

func (m *onnxModel) TryEmbed(ctx context.Context, texts []string) ([][]float32, error) {
	return m.emb.TryEmbed(ctx, texts)
}

func (m *onnxModel) EmbedEmail(ctx context.Context, subject, body string) ([]store.EmbeddedChunk, bool, error) {
	tok := m.emb.Tokenizer()
	var chunks []store.EmbeddedChunk
	var encs []embed.Encoding
	if pieces := tok.PieceIDs(subject); len(pieces) > 0 {
		chunks = append(chunks, store.EmbeddedChunk{N: 0})
		encs = append(encs, tok.Wrap(pieces))
	}
	spans, truncated := tok.ChunkSpans(body, m.chunk)
	for i, sp := range spans {
		chunks = append(chunks, store.EmbeddedChunk{N: i + 1, Start: sp.Start, End: sp.End})
		encs = append(encs, sp.Enc)
	}
	vecs, err := m.emb.EmbedEncodings(ctx, encs)
	if err != nil {
		return nil, false, err
	}
	for i := range chunks {
		chunks[i].Vec = vecs[i]
	}
	return chunks, truncated, nil
}

// LiteModelID is the id of the lite model's vectors: SIF-weighted averages
// of the wink word vectors with the vocabulary's common direction removed.
const LiteModelID = wordvec.ModelName + "+sif-cc"

// Lite windows: word vectors average well over a few sentences, not pages.
const (
	liteWindowWords  = 48
	liteOverlapWords = 8
)

// liteModel embeds with static word vectors: no network, no ONNX Runtime,
// ~100× less CPU than MiniLM, and weaker search (it matches words and close
// synonyms, not meaning across phrasing).
type liteModel struct {
	wv        *wordvec.Model
	maxChunks int
}

func (m *liteModel) ID() string { return LiteModelID }
func (m *liteModel) Dim() int   { return m.wv.Dim() }
func (m *liteModel) Close()     {}

func (m *liteModel) embed(text string) []float32 {
	v := m.wv.EmbedText(text)
	m.wv.RemoveCommon(v)
	return v
}

func (m *liteModel) TryEmbed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out[i] = m.embed(t)
	}
	return out, nil
}

func (m *liteModel) EmbedEmail(ctx context.Context, subject, body string) ([]store.EmbeddedChunk, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var chunks []store.EmbeddedChunk
	if m.wv.Known(subject) {
		chunks = append(chunks, store.EmbeddedChunk{N: 0, Vec: m.embed(subject)})
	}
	runes := []rune(body)
	spans, truncated := wordWindows(runes, liteWindowWords, liteOverlapWords, max(m.maxChunks, 1))
	for i, sp := range spans {
		text := string(runes[sp[0]:sp[1]])
		if !m.wv.Known(text) {
			continue
		}
		chunks = append(chunks, store.EmbeddedChunk{N: i + 1, Start: sp[0], End: sp[1], Vec: m.embed(text)})
	}
	return chunks, truncated, nil
}

// wordWindows cuts text into windows of size words overlapping by overlap
// words, at most maxChunks of them, as rune ranges [start, end); the bool
// reports words left after the last window.
func wordWindows(text []rune, size, overlap, maxChunks int) ([][2]int, bool) {
	var words [][2]int
	start := -1
	for i, r := range text {
		word := unicode.IsLetter(r) || unicode.IsDigit(r)
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0 && r != '-' && r != '\'' && r != '’':
			words = append(words, [2]int{start, i})
			start = -1
		}
	}
	if start >= 0 {
		words = append(words, [2]int{start, len(text)})
	}
	var out [][2]int
	stride := max(size-overlap, 1)
	for first := 0; first < len(words); first += stride {
		if len(out) == maxChunks {
			return out, true
		}
		last := min(first+size, len(words)) - 1
		out = append(out, [2]int{words[first][0], words[last][1]})
		if last == len(words)-1 {
			break
		}
	}
	return out, false
}

// openLite opens the lite model from the wink word vectors (the source JSON
// at src, converted once into a cache file in cacheDir).
func openLite(src, cacheDir string, maxChunks int) (*liteModel, error) {
	wv, err := wordvec.Open(src, cacheDir, wordvec.Options{MaxWords: wordvec.LiteWords})
	if err != nil {
		return nil, fmt.Errorf("lite embedding model: %w", err)
	}
	return &liteModel{wv: wv, maxChunks: maxChunks}, nil
}
