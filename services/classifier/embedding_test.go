package classifier

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/internal/embedtest"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/classifier/eval"
	"github.com/ownyou/home/services/classifier/fakeoai"
)

func insertLabeled(t *testing.T, db *store.DB, prefix string, from, n int) []string {
	t.Helper()
	set, err := eval.Set()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := from; i < from+n; i++ {
		l := set[i%len(set)]
		id := fmt.Sprintf("%s-%03d", prefix, i)
		if _, err := db.Pool.Exec(context.Background(), `
			INSERT INTO emails (id, message_id, content_hash, subject, from_addr, body_text, sort_at) VALUES ($1, $1, $1, $2, $3, $4, $5)`,
			id, l.Subject, l.From, l.Body, time.Date(2026, 1, 1, i, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func statusMessage(t *testing.T, db *store.DB) string {
	var msg string
	if err := db.Pool.QueryRow(context.Background(), `SELECT message FROM classifier_status WHERE id = 'classifier'`).Scan(&msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

func classifiedCount(t *testing.T, db *store.DB, ids []string) int {
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM email_stages WHERE stage = 'classifier' AND status = 'done' AND email_id = ANY($1)`, ids).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Without the embedder service mail is classified on word vectors and the
// status says so; once the embedder answers, the shortlist and the local
// classifier move to its model, reuse its stored chunk vectors, and the
// message goes away.
func TestEmbedderOverNATSIsUsedWhenItAnswersAndWordVectorsStandInUntilThen(t *testing.T) {
	for _, withLLM := range []bool{false, true} {
		name := "local classifier"
		if withLLM {
			name = "LLM shortlist"
		}
		t.Run(name, func(t *testing.T) {
			db := testkit.DB(t)
			b := testkit.NATS(t, db)
			var fake *fakeoai.Server
			if withLLM {
				fake = &fakeoai.Server{}
			}
			svc := startService(t, db, b, fake, useEmbedder)

			// 1. No embedder service: classified on word vectors, and said so.
			first := insertLabeled(t, db, "early", 0, 5)
			for _, id := range first {
				if err := bus.Publish(context.Background(), b, bus.EmailsEmbedded, "embedded:"+id, bus.EmailEmbedded{EmailID: id}); err != nil {
					t.Fatal(err)
				}
			}
			testkit.Eventually(t, 60*time.Second, func() bool { return classifiedCount(t, db, first) == len(first) }, "mail not classified without the embedder")
			testkit.Eventually(t, 30*time.Second, func() bool {
				return strings.HasPrefix(statusMessage(t, db), embedderMessagePrefix) && strings.Contains(statusMessage(t, db), name)
			}, "the fallback to word vectors is not in classifier_status.message")
			if withLLM && svc.llm.ShortlistModel() != svc.emb.ModelID() {
				t.Errorf("shortlist model without the embedder = %q, want the word vectors %q", svc.llm.ShortlistModel(), svc.emb.ModelID())
			}

			// 2. The embedder service starts: new mail goes ingest → embedder →
			// classifier, and the classifier moves to the embedder's model.
			model := embedtest.Start(t, db, b)
			testkit.Eventually(t, 120*time.Second, func() bool {
				probe := insertLabeled(t, db, fmt.Sprintf("probe%d", time.Now().UnixNano()), 5, 1)
				if err := bus.Publish(context.Background(), b, bus.EmailsIngested, probe[0], bus.EmailIngested{EmailID: probe[0]}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond)
				if withLLM {
					return svc.llm.ShortlistModel() == model
				}
				b, ready, ok := svc.local.(*switchingLocal).minilm.Ready()
				return ok && b != nil && ready == model
			}, "the classifier never moved to the embedder's model")
			testkit.Eventually(t, 30*time.Second, func() bool { return statusMessage(t, db) == "" }, "the fallback message stayed after the embedder answered")

			later := insertLabeled(t, db, "late", 10, 5)
			for _, id := range later {
				if err := bus.Publish(context.Background(), b, bus.EmailsIngested, id, bus.EmailIngested{EmailID: id}); err != nil {
					t.Fatal(err)
				}
			}
			testkit.Eventually(t, 60*time.Second, func() bool { return classifiedCount(t, db, later) == len(later) }, "mail not classified through the embedder")
			var stored int
			if err := db.Pool.QueryRow(context.Background(), `SELECT count(DISTINCT email_id) FROM embeddings WHERE model = $1 AND email_id = ANY($2)`, model, later).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if stored != len(later) {
				t.Errorf("%d of %d emails have chunk vectors of %q", stored, len(later), model)
			}
			if !withLLM {
				var n int
				if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM classifications WHERE email_id = ANY($1) AND model <> $2`, later, model).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n > 0 {
					t.Errorf("%d classifications of mail embedded by %q were made with another model", n, model)
				}
			}
		})
	}
}
