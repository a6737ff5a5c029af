package classifier

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/services/classifier/core"
)

// remoteEmbedder is the embedder service (MiniLM) over NATS request/reply as a
// core.Embedder: texts go in requests of at most per texts. Its model id and
// dimension are those of the last reply ("" and 0 before the first).
type remoteEmbedder struct {
	c   *embedclient.Client
	per int
}

// embedRequestTexts stays well under the embedder's OWNYOU_EMBED_REQUEST_MAX_TEXTS.
const embedRequestTexts = 64

func (r *remoteEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for i := 0; i < len(texts); i += r.per {
		vecs, err := r.c.Embed(ctx, texts[i:min(i+r.per, len(texts))])
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (r *remoteEmbedder) Dim() int        { return r.c.Dim() }
func (r *remoteEmbedder) ModelID() string { return r.c.ModelID() }

// embedderStatus records in classifier_status.message which parts of the
// classifier fall back to word vectors because the embedder service is not
// usable, and clears that message when all of them use it again.
type embedderStatus struct {
	set   func(ctx context.Context, msg string)
	clear func(ctx context.Context)
	log   *slog.Logger

	mu   sync.Mutex
	down map[string]error // user → reason
}

func (s *embedderStatus) report(user string) func(ctx context.Context, fallback bool, reason error) {
	return func(ctx context.Context, fallback bool, reason error) {
		s.mu.Lock()
		if fallback {
			s.down[user] = reason
		} else {
			delete(s.down, user)
		}
		var users []string
		var why error
		for u, r := range s.down {
			users = append(users, u)
			why = r
		}
		s.mu.Unlock()
		if len(users) == 0 {
			s.log.InfoContext(ctx, "embedder service in use again", "user", user)
			s.clear(ctx)
			return
		}
		s.set(ctx, fmt.Sprintf("%s (%v): word vectors stand in for the %s until it answers", embedderMessagePrefix, why, strings.Join(slices.Sorted(slices.Values(users)), " and ")))
	}
}

// embedderMessagePrefix starts every message embedderStatus writes, so
// clearing it leaves other messages alone.
const embedderMessagePrefix = "embedder service not usable"

// switchingLocal is the local backend on the embedder service's model when
// that is usable (minilm: its category description vectors, prepared in the
// background once per model), else on word vectors (fallback). Safe for
// concurrent use.
type switchingLocal struct {
	fallback core.Backend
	minilm   *core.Preferred[core.Backend]
}

func (l *switchingLocal) Name() string { return l.fallback.Name() }

// Classify uses the MiniLM backend when ready, else (or when it fails) the word-vector one.
func (l *switchingLocal) Classify(ctx context.Context, emails []core.Email) ([]core.Classification, error) {
	if b, ok := l.minilm.Get(ctx); ok {
		cls, err := b.Classify(ctx, emails)
		if err == nil {
			return cls, nil
		}
		l.minilm.Failed(ctx, err)
	}
	return l.fallback.Classify(ctx, emails)
}
