// Command search (tools/eval/search) measures search quality on labeled
// mailboxes: each split of tools/eval/data/search/ (tune: developed on;
// blind: scored once per change, never tuned on) is imported through the
// real ingest service (a zip of its .eml files), embedded by the real
// embedder service with each available model (the lite model always,
// MiniLM where its weights are in the model cache), and every labeled query
// is run in keyword, semantic and hybrid mode. It prints nDCG@10 (graded
// relevance 2/1), recall@10 and precision@10 (the share of the hits shown
// that are relevant: what unrelated padding costs) as BENCH lines:
//
//	BENCH search_<split>_<model>_<mode>_ndcg10 0.731 ratio
//
// Flags: -split tune|blind|all (default all), -v (per-query figures; tune
// split only, so the blind set is never read query by query), -floor and
// -semweight (override the tuned similarity floor and fusion weight, for
// tuning runs). Env: OWNYOU_MODEL_DIR, OWNYOU_WORDVEC_PATH, OWNYOU_SHARED_DIR.
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/internal/benchkit"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/search"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/embedder"
	"github.com/ownyou/home/services/ingest"
)

type query struct {
	ID       string         `json:"id"`
	Query    string         `json:"query"`
	Relevant map[string]int `json:"relevant"`
}

func main() {
	split := flag.String("split", "all", "tune, blind or all")
	verbose := flag.Bool("v", false, "per-query figures (tune split only)")
	floor := flag.Float64("floor", math.NaN(), "similarity floor for every model (tuning runs)")
	semWeight := flag.Float64("semweight", 0, "semantic weight in hybrid fusion (tuning runs)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *split, *verbose, *floor, *semWeight); err != nil {
		fmt.Fprintln(os.Stderr, "eval search:", err)
		os.Exit(1)
	}
}

func dataDir() (string, error) {
	root, err := models.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "tools", "eval", "data", "search"), nil
}

func run(ctx context.Context, split string, verbose bool, floor, semWeight float64) error {
	dir, err := dataDir()
	if err != nil {
		return err
	}
	splits := []string{"tune", "blind"}
	if split != "all" {
		splits = []string{split}
	}
	specs := []string{"lite"}
	if minilmPresent() {
		specs = append(specs, "fp32")
	} else {
		fmt.Println("# MiniLM weights not in the model cache: lite model only")
	}
	for _, sp := range splits {
		qs, mails, err := loadSplit(filepath.Join(dir, sp))
		if errors.Is(err, os.ErrNotExist) {
			fmt.Printf("# split %s: not present\n", sp)
			continue
		}
		if err != nil {
			return fmt.Errorf("split %s: %w", sp, err)
		}
		for _, spec := range specs {
			if err := evalSplit(ctx, sp, spec, qs, mails, verbose && sp == "tune", floor, semWeight); err != nil {
				return fmt.Errorf("split %s, model %s: %w", sp, spec, err)
			}
		}
	}
	return nil
}

func minilmPresent() bool {
	_, err := os.Stat(filepath.Join(models.CacheDir(), "all-MiniLM-L6-v2", "model.onnx"))
	return err == nil
}

// loadSplit reads a split's queries and mail files (name → raw).
func loadSplit(dir string) ([]query, map[string][]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, "queries.json"))
	if err != nil {
		return nil, nil, err
	}
	var qs []query
	if err := json.Unmarshal(b, &qs); err != nil {
		return nil, nil, fmt.Errorf("queries.json: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "mail", "*.eml"))
	if err != nil {
		return nil, nil, err
	}
	mails := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		mails[filepath.Base(f)] = raw
	}
	for _, q := range qs {
		for name := range q.Relevant {
			if _, ok := mails[name]; !ok {
				return nil, nil, fmt.Errorf("query %s: relevant mail %s not in the mailbox", q.ID, name)
			}
		}
	}
	return qs, mails, nil
}

// evalSplit imports the split's mail into a fresh stack (ingest and
// embedder services on their own Postgres and JetStream) and scores its
// queries with the model spec.
func evalSplit(ctx context.Context, split, spec string, qs []query, mails map[string][]byte, verbose bool, floor, semWeight float64) error {
	inf, err := benchkit.Start(ctx, "evalsearch", 5497)
	if err != nil {
		return err
	}
	defer inf.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	deps := app.Deps{DB: inf.DB, Bus: inf.Bus, Log: inf.Log}

	var icfg ingest.Config
	icfg.DataDir = filepath.Join(inf.Dir, "data")
	icfg.Concurrency, icfg.Workers, icfg.MaxMessageBytes, icfg.MaxSyncs = 1, 4, 25<<20, 1
	icfg.SyncInterval, icfg.RetryAfter, icfg.StaleAfter, icfg.HeartbeatEvery, icfg.PollEvery = time.Hour, time.Minute, 5*time.Minute, 20*time.Second, 200*time.Millisecond
	isvc, err := ingest.New(icfg, deps)
	if err != nil {
		return err
	}
	var ecfg embedder.Config
	ecfg.DataDir = filepath.Join(inf.Dir, "data")
	ecfg.ModelDir, ecfg.Model, ecfg.WordVecPath = models.CacheDir(), spec, os.Getenv("OWNYOU_WORDVEC_PATH")
	ecfg.Threads, ecfg.InterThreads, ecfg.MaxTokens, ecfg.Overlap, ecfg.MaxChunks = 2, 1, 128, 16, 16
	ecfg.MaxBatch, ecfg.BatchWait, ecfg.Queue, ecfg.Concurrency, ecfg.Requests, ecfg.MaxTexts = 32, 5*time.Millisecond, 1024, 8, 8, 256
	ecfg.CheckEvery, ecfg.SwitchGrace, ecfg.ReembedBatch = time.Hour, time.Minute, 256
	esvc, err := embedder.New(ecfg, deps)
	if err != nil {
		return err
	}
	done := make(chan error, 2)
	go func() { done <- isvc.Run(runCtx) }()
	go func() { done <- esvc.Run(runCtx) }()
	defer func() { stop(); <-done; <-done }()

	if err := importZip(ctx, inf, mails); err != nil {
		return err
	}
	// Every mail embedded (or failed) by the embedder stage.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var n, total int
		if err := inf.DB.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM email_stages WHERE stage = 'embedder'), (SELECT count(*) FROM emails)`).Scan(&n, &total); err != nil {
			return err
		}
		if total > 0 && n == total {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded %d of %d mails in 5 minutes", n, total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// File name → email id, through each mail's Message-ID.
	ids, err := emailIDs(ctx, inf.DB, mails)
	if err != nil {
		return err
	}
	cfg := search.Config{SemanticWeight: semWeight}
	if !math.IsNaN(floor) {
		cfg.Floor = func(string) float64 { return floor }
	}
	s := search.New(inf.DB.Pool, embedclient.New(inf.Bus.Conn(), 30*time.Second), cfg)
	model := "lite"
	if spec != "lite" {
		model = "minilm"
	}
	for _, mode := range []search.Mode{search.Keyword, search.Semantic, search.Hybrid} {
		var ndcg, recall, prec float64
		for _, q := range qs {
			res, err := s.Search(ctx, search.Query{Text: q.Query, Mode: mode, Limit: 10})
			if err != nil {
				return fmt.Errorf("query %s (%s): %w", q.ID, mode, err)
			}
			got := make([]string, len(res.Hits))
			for i, h := range res.Hits {
				got[i] = ids.name[h.EmailID]
			}
			n, r := score(got, q.Relevant)
			ndcg += n
			recall += r
			prec += precision(got, q.Relevant)
			if verbose {
				fmt.Printf("  %s %-8s ndcg %.2f recall %.2f  %q → %v (want %v)\n", q.ID, mode, n, r, q.Query, got, sortedKeys(q.Relevant))
			}
		}
		k := float64(len(qs))
		fmt.Printf("BENCH search_%s_%s_%s_ndcg10 %.3f ratio\n", split, model, mode, ndcg/k)
		fmt.Printf("BENCH search_%s_%s_%s_recall10 %.3f ratio\n", split, model, mode, recall/k)
		fmt.Printf("BENCH search_%s_%s_%s_precision10 %.3f ratio\n", split, model, mode, prec/k)
	}
	fmt.Printf("BENCH search_%s_queries %d queries\n", split, len(qs))
	return nil
}

// importZip uploads the mails as a zip of .eml files and waits for the import.
func importZip(ctx context.Context, inf *benchkit.Infra, mails map[string][]byte) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(mails) {
		w, err := zw.Create(name)
		if err != nil {
			return err
		}
		if _, err := w.Write(mails[name]); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	objs, err := inf.Bus.ImportObjects(ctx)
	if err != nil {
		return err
	}
	info, err := objs.Put(ctx, jetstream.ObjectMeta{Name: "eval"}, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return err
	}
	if err := inf.DB.CreateImport(ctx, "eval", "eval.zip", store.ImportQueued, int64(info.Size)); err != nil {
		return err
	}
	if err := bus.Publish(ctx, inf.Bus, bus.ImportsRequested, "eval", bus.ImportRequested{ImportID: "eval", Object: "eval", Filename: "eval.zip"}); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		im, err := inf.DB.GetImport(ctx, "eval")
		if err != nil {
			return err
		}
		switch {
		case im.Status == store.ImportDone:
			if im.Errors > 0 {
				fmt.Printf("# %d of %d mails could not be imported: %+v\n", im.Errors, im.Messages, im.ErrorList)
			}
			return nil
		case im.Status == store.ImportFailed && !strings.Contains(im.Error, "retrying"):
			return fmt.Errorf("import failed: %s", im.Error)
		case time.Now().After(deadline):
			return fmt.Errorf("import not done in 5 minutes: %+v", im)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type idMap struct{ name map[string]string } // email id → file name

func emailIDs(ctx context.Context, db *store.DB, mails map[string][]byte) (idMap, error) {
	m := idMap{name: map[string]string{}}
	rows, err := db.Pool.Query(ctx, `SELECT id, message_id FROM emails`)
	if err != nil {
		return m, err
	}
	byMsgID := map[string]string{}
	for rows.Next() {
		var id, mid string
		if err := rows.Scan(&id, &mid); err != nil {
			rows.Close()
			return m, err
		}
		byMsgID[mid] = id
	}
	rows.Close()
	for name, raw := range mails {
		mid := messageID(raw)
		id, ok := byMsgID[mid]
		if !ok {
			return m, fmt.Errorf("%s (Message-ID %q) was not imported", name, mid)
		}
		m.name[id] = name
	}
	return m, nil
}

// messageID reads a mail's Message-ID header (without angle brackets), as
// the store keeps it.
func messageID(raw []byte) string {
	head, _, _ := bytes.Cut(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n\n"))
	for _, line := range strings.Split(string(head), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "message-id") {
			return strings.Trim(strings.TrimSpace(v), "<>")
		}
	}
	return ""
}

// score is nDCG@10 (gain 2^grade − 1, log2 discount) and recall@10 (the
// share of relevant mails in the first ten).
func score(got []string, rel map[string]int) (ndcg, recall float64) {
	var dcg float64
	found := 0
	for i, name := range got {
		if i == 10 {
			break
		}
		if g, ok := rel[name]; ok && g > 0 {
			dcg += (math.Pow(2, float64(g)) - 1) / math.Log2(float64(i+2))
			found++
		}
	}
	grades := make([]int, 0, len(rel))
	for _, g := range rel {
		grades = append(grades, g)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(grades)))
	var idcg float64
	for i, g := range grades {
		if i == 10 {
			break
		}
		idcg += (math.Pow(2, float64(g)) - 1) / math.Log2(float64(i+2))
	}
	if idcg == 0 {
		return 0, 0
	}
	return dcg / idcg, float64(found) / float64(min(len(rel), 10))
}

// precision is the share of the (at most ten) hits shown that are relevant:
// what padding a result list with unrelated mail costs (no hits: 1).
func precision(got []string, rel map[string]int) float64 {
	got = got[:min(len(got), 10)]
	if len(got) == 0 {
		return 1
	}
	n := 0
	for _, name := range got {
		if rel[name] > 0 {
			n++
		}
	}
	return float64(n) / float64(len(got))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
