package agents

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgvector/pgvector-go"

	"github.com/ownyou/home/internal/embedtest"
	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/search"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/agents/agent"
)

// storeVector stores text's vector, from the embedder over NATS, as the
// mail's only chunk, as the embedder stage would for a mail meaning text.
func storeVector(t *testing.T, db *store.DB, c *embedclient.Client, emailID, text string) {
	t.Helper()
	ctx := context.Background()
	vecs, err := c.Embed(ctx, []string{text})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO embeddings (email_id, model, chunk, text_start, text_end, embedding) VALUES ($1, $2, 0, 0, 40, $3)`,
		emailID, c.ModelID(), pgvector.NewVector(vecs[0])); err != nil {
		t.Fatal(err)
	}
}

func ids(es []agent.Email) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestEvidenceSearchAddsTheSemanticLegAndDegradesWithoutIt(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	now := time.Now()
	insertMail(t, db, "kw", "no-reply@flytap.example", "Your flight itinerary", "Flight TP 1351 Lisbon (LIS) to London (LHR)", now.Add(-time.Hour))
	// no query word in it: only its meaning (here: its vector) can find it
	insertMail(t, db, "sem", "stays@casa.example", "See you in Porto", "Arrival 12 December, two nights, room 4", now.Add(-2*time.Hour))
	insertMail(t, db, "old", "no-reply@flytap.example", "Your flight itinerary", "Flight TP 1352", now.AddDate(-2, 0, 0))
	q := agent.EmailQuery{Text: "flight itinerary boarding", Since: now.AddDate(-1, 0, 0), Limit: 50}

	d := &pgData{db: db, search: search.New(db.Pool, embedclient.New(b.Conn(), 2*time.Second), search.Config{})}
	found, err := d.SearchEmails(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(found.Emails); !slices.Equal(got, []string{"kw"}) || len(found.Notes) != 1 || !strings.Contains(found.Notes[0], "semantic search unavailable") {
		t.Fatalf("without an embedder: %v, notes %q; want the keyword hit and a note", got, found.Notes)
	}

	embedtest.Start(t, db, b)
	c := embedclient.New(b.Conn(), 5*time.Second)
	storeVector(t, db, c, "sem", hybridQuery(q.Text))
	storeVector(t, db, c, "old", hybridQuery(q.Text)) // outside the date range: filtered in both legs
	found, err = d.SearchEmails(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(found.Emails); !slices.Equal(got, []string{"kw", "sem"}) || len(found.Notes) != 0 {
		t.Fatalf("with the embedder: %v, notes %q; want the keyword and the semantic hit, no note", got, found.Notes)
	}
}

func TestRunRecordNotesAKeywordOnlySearch(t *testing.T) {
	f := start(t) // no embedder on this bus
	ctx := context.Background()
	insertMail(t, f.db, "r1", "no-reply@opentable.example", "Your reservation at Bistro Verde is confirmed",
		"Table for 2 on "+time.Now().AddDate(0, 0, 3).Format("Monday, 2 January 2006")+" at 7:30 PM.", time.Now().Add(-time.Hour))
	run, err := f.svc.sched.Run(ctx, jobFor(t, "restaurant"))
	if err != nil || len(run.Notes) != 1 || !strings.Contains(run.Notes[0], "semantic search unavailable") {
		t.Fatalf("run = %+v, %v; want ok with a note", run, err)
	}
	var notes []string
	if err := f.db.Pool.QueryRow(ctx, `SELECT notes FROM agent_runs WHERE id = $1`, run.ID).Scan(&notes); err != nil || !slices.Equal(notes, run.Notes) {
		t.Fatalf("stored notes = %q, %v", notes, err)
	}
}
