// Package embed turns text into sentence embeddings in-process: a BERT
// uncased WordPiece tokenizer, an ONNX Runtime session running a BERT
// encoder (all-MiniLM-L6-v2, or a generated graph of the same shape where the
// real weights are unavailable), mean pooling with L2 normalization,
// overlapping chunking of long texts and dynamic micro-batching across
// concurrent callers.
package embed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
)

// Embedder maps texts to fixed-size unit vectors. Implementations are safe
// for concurrent use; vectors from different ModelIDs are not comparable.
type Embedder interface {
	// Embed returns one vector of length Dim per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dim is the vector length.
	Dim() int
	// ModelID identifies the model and weights; it changes when they do.
	ModelID() string
}

// Config builds an ONNX embedder.
type Config struct {
	// ModelPath is the .onnx file; ModelName prefixes the ModelID.
	ModelPath, ModelName string
	// VocabPath is the WordPiece vocab.txt.
	VocabPath string
	// MaxLen is the tokens per sequence, [CLS]/[SEP] included (default 128).
	MaxLen int
	// Chunk controls windows for EmbedDocument.
	Chunk   ChunkConfig
	Session SessionConfig
	Batch   BatchConfig
	Log     *slog.Logger
}

// ONNX is the transformer Embedder: tokenizer → micro-batcher → ORT → pooling.
// It is safe for concurrent use; Close once when done.
type ONNX struct {
	tok     *Tokenizer
	sess    *Session
	batch   *Batcher
	modelID string
	chunk   ChunkConfig
}

var _ Embedder = (*ONNX)(nil)

// New loads the vocabulary and model and starts the batching worker.
// Missing or unusable files give errors naming the file and the fix.
func New(cfg Config) (*ONNX, error) {
	if cfg.MaxLen == 0 {
		cfg.MaxLen = 128
	}
	if cfg.Chunk.MaxChunks == 0 {
		cfg.Chunk = ChunkConfig{Overlap: 16, MaxChunks: 16}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	tok, err := LoadVocab(cfg.VocabPath, cfg.MaxLen)
	if err != nil {
		return nil, fmt.Errorf("embedder: %w", err)
	}
	sum, err := fileSHA256(cfg.ModelPath)
	if err != nil {
		return nil, fmt.Errorf("embedder: read model: %w (run `make models`)", err)
	}
	sess, err := NewSessionFile(cfg.Session, cfg.ModelPath)
	if err != nil {
		return nil, fmt.Errorf("embedder: model %s: %w", cfg.ModelPath, err)
	}
	// Probe once with the highest token id: a model whose vocabulary is
	// smaller than the tokenizer's would otherwise fail on some mails only.
	probe, err := sess.Embed(PadBatch([]Encoding{tok.Wrap([]int64{int64(tok.VocabSize() - 1)})}, tok.PadID()))
	if err == nil && (len(probe) != 1 || !finite(probe[0])) {
		err = errors.New("probe embedding is not finite")
	}
	if err != nil {
		_ = sess.Close()
		return nil, fmt.Errorf("embedder: %w: model %s does not work with vocabulary %s (%d tokens): %v", ErrModel, cfg.ModelPath, cfg.VocabPath, tok.VocabSize(), err)
	}
	name := cfg.ModelName
	if name == "" {
		name = "onnx"
	}
	e := &ONNX{tok: tok, sess: sess, modelID: name + "@" + hex.EncodeToString(sum[:6]), chunk: cfg.Chunk}
	e.batch = newBatcher(cfg.Batch, func(encs []Encoding) ([][]float32, error) {
		return sess.Embed(PadBatch(encs, tok.PadID()))
	}, cfg.Log)
	return e, nil
}

// Dim returns the embedding width (384 for MiniLM).
func (e *ONNX) Dim() int { return e.sess.Dim() }

// ModelID is ModelName@<first 12 hex digits of the model file's sha256>.
func (e *ONNX) ModelID() string { return e.modelID }

// Tokenizer returns the tokenizer in use.
func (e *ONNX) Tokenizer() *Tokenizer { return e.tok }

// Embed embeds each text (truncated to MaxLen tokens), waiting for queue space.
func (e *ONNX) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return e.batch.Do(ctx, e.encode(texts), false)
}

// TryEmbed is Embed that fails at once with ErrOverloaded when the queue is full.
func (e *ONNX) TryEmbed(ctx context.Context, texts []string) ([][]float32, error) {
	return e.batch.Do(ctx, e.encode(texts), true)
}

// EmbedEncodings embeds already tokenized sequences.
func (e *ONNX) EmbedEncodings(ctx context.Context, encs []Encoding) ([][]float32, error) {
	return e.batch.Do(ctx, encs, false)
}

// EmbedDocument embeds a long text as overlapping windows, one vector per
// window; truncated reports that text beyond MaxChunks windows was left out.
func (e *ONNX) EmbedDocument(ctx context.Context, text string) (vecs [][]float32, truncated bool, err error) {
	encs, truncated := e.tok.Chunks(text, e.chunk)
	vecs, err = e.batch.Do(ctx, encs, false)
	return vecs, truncated, err
}

// Close stops batching and releases the ORT session.
func (e *ONNX) Close() error {
	e.batch.Close()
	return e.sess.Close()
}

func (e *ONNX) encode(texts []string) []Encoding {
	encs := make([]Encoding, len(texts))
	for i, t := range texts {
		encs[i] = e.tok.Encode(t)
	}
	return encs
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// IsOverloaded reports whether err means "try again later".
func IsOverloaded(err error) bool { return errors.Is(err, ErrOverloaded) }
