// Package core holds the classifier's shared vocabulary: the email as the
// classifier sees it, a classification with its provenance, and the
// interfaces the backends implement and consume.
package core

import (
	"context"
	"time"

	"github.com/ownyou/home/pkg/taxonomy"
)

// Chunk is a piece of an email's text with the vector the embedder stored for
// it (nil when none was stored).
type Chunk struct {
	Text   string
	Vector []float32
}

// Email is the classifier's view of one message.
type Email struct {
	ID      string
	From    string
	Subject string
	Text    string // cleaned body text
	Date    time.Time
	Chunks  []Chunk
	// VectorModel is the embedding model id of the chunk vectors, "" if none.
	VectorModel string
	// Backfill marks mail from a historical import rather than new mail; the
	// LLM backend defers backfill first when the token budget runs low.
	Backfill bool
}

// Evidence strength as judged (LLM backend) or derived (local backend).
const (
	EvidenceExplicit      = "explicit"
	EvidenceContextual    = "contextual"
	EvidenceWeak          = "weak"
	EvidenceInappropriate = "inappropriate"
)

// Classification is one category assigned to one email, with provenance.
type Classification struct {
	EmailID       string
	Taxonomy      taxonomy.Kind
	CategoryID    string
	Section       taxonomy.Section
	Confidence    float64 // 0..1, the evidence strength s used by the profile math
	EvidenceType  string  // explicit, contextual or weak
	Evidence      string  // excerpt supporting the category
	Backend       string  // "local" or "llm"
	Model         string  // embedding or LLM model id
	PromptVersion string  // prompt/rules version that produced it
}

// Embedder turns texts into unit vectors. Implementations are safe for concurrent use.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Dim() int
	ModelID() string
}

// Backend classifies a batch of emails. It returns the classifications of all
// emails it could classify; an error means the whole batch should be retried.
// Implementations are safe for concurrent use.
type Backend interface {
	Classify(ctx context.Context, emails []Email) ([]Classification, error)
	Name() string
}
