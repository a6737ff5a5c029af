package embedder

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
)

// modelRetryEvery is how often a waiting embedder tries to load its model again.
const modelRetryEvery = time.Minute

// waiting is the embedder while its model cannot be loaded (say, before
// `make models` has fetched the weights): /readyz reports why, emails.ingested
// stays untouched in its stream (nothing is lost, nothing pretends to be
// embedded), embedding requests are answered with the reason, and loading is
// retried every minute; once the model loads it runs as the normal service.
type waiting struct {
	cfg Config
	d   app.Deps
	log *slog.Logger

	mu  sync.Mutex
	err error
}

func newWaiting(cfg Config, d app.Deps, err error) *waiting {
	w := &waiting{cfg: cfg, d: d, log: d.Log.With("stage", Stage), err: err}
	if d.Health != nil {
		d.Health.Add("model", func(context.Context) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.err
		})
	}
	return w
}

func (w *waiting) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

// record tells the Pipeline screen why the stage waits ("" once it runs).
func (w *waiting) record(ctx context.Context, err error) {
	msg := ""
	if err != nil {
		msg = "No embedding model can be loaded: " + err.Error()
	}
	if dbErr := w.d.DB.SetEmbeddingBlocked(ctx, msg); dbErr != nil && ctx.Err() == nil {
		w.log.WarnContext(ctx, "record why the embedder waits", "err", dbErr)
	}
}

// Run waits for the model, then runs the embedder until ctx ends.
func (w *waiting) Run(ctx context.Context) error {
	w.log.ErrorContext(ctx, "embedding model not loaded; emails wait at the embedder stage until it is (retrying every minute)", "err", w.err)
	w.record(ctx, w.err)
	sub, err := w.d.Bus.Conn().QueueSubscribe(bus.SubjectEmbed, bus.QueueEmbedder, func(m *nats.Msg) {
		w.mu.Lock()
		reason := w.err
		w.mu.Unlock()
		if m.Reply == "" || reason == nil {
			return
		}
		data, _ := json.Marshal(bus.EmbedReply{Error: &bus.EmbedError{Code: bus.EmbedErrInternal, Message: "embedding model not loaded: " + reason.Error()}})
		_ = m.Respond(data)
	})
	if err != nil {
		return fmt.Errorf("embedder: subscribe %s: %w", bus.SubjectEmbed, err)
	}
	t := time.NewTicker(modelRetryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = sub.Unsubscribe()
			return nil
		case <-t.C:
			s, err := New(w.cfg, w.d)
			if err != nil {
				w.setErr(err)
				w.record(ctx, err)
				continue
			}
			w.record(ctx, nil)
			_ = sub.Unsubscribe()
			w.setErr(nil)
			w.log.InfoContext(ctx, "embedding model loaded; the embedder stage is running")
			return s.Run(ctx)
		}
	}
}
