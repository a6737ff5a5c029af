// Command embed benchmarks the embedder on a generated graph with
// all-MiniLM-L6-v2's shapes (6 layers, hidden 384) and prints one line per
// figure, "BENCH <name> <value> <unit>":
//
//   - embed_raw_b{1,8,32}_t{16,128}: embeddings/s of bare ORT runs on pre-padded tensors;
//   - embed_svc_b{1,8,32}_t{16,128}: embeddings/s through the service path
//     (tokenizer, micro-batcher fed by concurrent callers, pooling, normalization);
//   - embed_svc_ratio_…: service/raw (target ≥ 0.9);
//   - embed_raw_with_work_b1_…: control, bare ORT with the service's
//     tokenize/pad/pool between runs (no batcher), separating what the
//     pause between runs costs from what the batcher costs;
//   - embed_rss_mb: resident memory of a process holding the embedder with the
//     MiniLM-size graph loaded, after a batch-32×128 warm-up (target < 300 MB);
//   - search_hybrid_100k_p50/p95: hybrid search at 100k mails (target p95 <
//     50 ms) once the pool's connections have served 400 other queries, as a
//     running gateway's have; search_hybrid_100k_fresh_conns_p50/p95: the
//     first 200 queries on new connections, each of whose Postgres backends
//     must still map the shared buffers it touches (costly on VMs);
//   - search_term_lists_refresh: time to compute the common-term lists.
//
// Sessions run as the embedder service's do by default: ORT's intra-op
// threads do not spin (OWNYOU_EMBED_SPIN=false); BENCH_SPIN=1 lets them.
//
// Needs OWNYOU_ORT_LIB (or the model cache) and the tokenizer vocab from
// OWNYOU_SHARED_DIR (or the cache's all-MiniLM-L6-v2/vocab.txt).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
)

func main() {
	rssChild := flag.String("rss-child", "", "internal: load the graph at this path, warm up, print RSS")
	dur := flag.Duration("dur", 2*time.Second, "measuring time per figure")
	dbURL := flag.String("db", os.Getenv("DATABASE_URL"), "PostgreSQL URL for the search figures ($DATABASE_URL)")
	searchN := flag.Int("search-n", 100000, "emails in the search corpus")
	only := flag.String("only", "", "embed or search: run one group of figures")
	threads := flag.Int("threads", 2, "ORT intra-op threads")
	flag.Parse()
	var err error
	if *rssChild != "" {
		err = rssMain(*rssChild, *threads)
	} else {
		err = run(*dur, *threads, *only, *dbURL, *searchN)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench embed:", err)
		os.Exit(1)
	}
}

func ortLib() string { return models.ORTLib() }

func newEmbedder(graph string, threads, maxBatch int) (*embed.ONNX, error) {
	vocab, err := models.MiniLMVocab()
	if err != nil {
		return nil, err
	}
	return embed.New(embed.Config{
		ModelPath: graph, ModelName: "bench-minilm", VocabPath: vocab, MaxLen: 128,
		Session: benchSession(threads),
		Batch:   embed.BatchConfig{MaxBatch: maxBatch, MaxWait: 2 * time.Millisecond},
	})
}

// textOfTokens builds a mail-like text whose encoding has exactly n tokens.
func textOfTokens(tok *embed.Tokenizer, n, seed int) string {
	words := strings.Fields("invoice meeting travel flight hotel order shipped account password reset newsletter weekly offer sale discount family photos dinner reservation budget report quarterly team update project deadline review friday monday tickets concert football league insurance renewal bank statement")
	var parts []string
	for i := 0; ; i++ {
		parts = append(parts, words[(seed*7+i*3)%len(words)])
		if len(tok.Encode(strings.Join(parts, " ")).IDs) >= n {
			return strings.Join(parts, " ")
		}
	}
}

func run(dur time.Duration, threads int, only, dbURL string, searchN int) error {
	graph := filepath.Join(os.TempDir(), "ownyou-bench-minilm.onnx")
	b, err := embed.GenerateGraph(embed.MiniLMGraph())
	if err != nil {
		return err
	}
	if err := os.WriteFile(graph, b, 0o644); err != nil {
		return err
	}
	defer os.Remove(graph)
	b = nil
	if only != "search" {
		if err := runEmbed(graph, dur, threads); err != nil {
			return err
		}
	}
	if only != "embed" {
		return runSearch(graph, threads, dbURL, searchN)
	}
	return nil
}

func runSearch(graph string, threads int, dbURL string, n int) error {
	ctx := context.Background()
	pool, cleanup, err := openBenchDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer cleanup()
	emb, err := newEmbedder(graph, threads, 8)
	if err != nil {
		return err
	}
	defer emb.Close()
	words, err := vocabWords()
	if err != nil {
		return err
	}
	t0 := time.Now()
	loaded, err := loadCorpus(ctx, pool, words, n)
	if err != nil {
		return err
	}
	if loaded {
		fmt.Fprintf(os.Stderr, "bench embed: loaded %d emails and built the HNSW index in %s\n", n, time.Since(t0).Round(time.Second))
	}
	cold, warm, err := benchSearch(ctx, pool, emb, words, 200)
	if err != nil {
		return err
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("BENCH search_hybrid_%dk_p50 %.1f ms\n", n/1000, ms(warm[0]))
	fmt.Printf("BENCH search_hybrid_%dk_p95 %.1f ms\n", n/1000, ms(warm[1]))
	fmt.Printf("BENCH search_hybrid_%dk_fresh_conns_p50 %.1f ms\n", n/1000, ms(cold[0]))
	fmt.Printf("BENCH search_hybrid_%dk_fresh_conns_p95 %.1f ms\n", n/1000, ms(cold[1]))
	return nil
}

// vocabWords returns whole-word vocabulary entries in the vocabulary's
// (roughly frequency) order, as a Zipf source of mail-like text.
func vocabWords() ([]string, error) {
	p, err := models.MiniLMVocab()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range strings.Split(string(raw), "\n") {
		if len(w) >= 2 && w[0] >= 'a' && w[0] <= 'z' && !strings.ContainsAny(w, "#[]") {
			out = append(out, w)
		}
	}
	return out, nil
}

func runEmbed(graph string, dur time.Duration, threads int) error {
	// As in the embedder's own process (services/embedder/cmd/embedder).
	if os.Getenv("GOMAXPROCS") == "" {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(embed.GoProcs(runtime.GOMAXPROCS(0), threads)))
	}
	fmt.Fprintf(os.Stderr, "embed figures with GOMAXPROCS=%d, %d intra-op threads\n", runtime.GOMAXPROCS(0), threads)
	raw, err := embed.NewSession(benchSession(threads), mustRead(graph))
	if err != nil {
		return err
	}
	defer raw.Close()
	for _, batch := range []int{1, 8, 32} {
		svc, err := newEmbedder(graph, threads, batch)
		if err != nil {
			return err
		}
		tok := svc.Tokenizer()
		for _, toks := range []int{16, 128} {
			texts := make([]string, 64)
			encs := make([]embed.Encoding, batch)
			for i := range texts {
				texts[i] = textOfTokens(tok, toks, i)
			}
			for i := range encs {
				encs[i] = tok.Encode(texts[i])
			}
			padded := embed.PadBatch(encs, tok.PadID())
			// Interleave short rounds of the paths, alternating which goes
			// first, so load from other processes and whatever the previous
			// round leaves behind hit them alike.
			paths := []func(time.Duration) (float64, time.Duration, error){
				func(d time.Duration) (float64, time.Duration, error) {
					n, t := measure(d, batch, func() error { _, err := raw.Hidden(padded); return err })
					return n, t, nil
				},
				func(d time.Duration) (float64, time.Duration, error) { return measureService(d, svc, texts, batch) },
			}
			if batch == 1 {
				// Control: bare ORT with the service's own per-call work
				// (tokenize, pad, pool) between runs and no batcher.
				paths = append(paths, func(d time.Duration) (float64, time.Duration, error) {
					n, t := measure(d, 1, func() error {
						e := tok.Encode(texts[0])
						_, err := raw.Embed(embed.PadBatch([]embed.Encoding{e}, tok.PadID()))
						return err
					})
					return n, t, nil
				})
			}
			ns := make([]float64, len(paths))
			ts := make([]time.Duration, len(paths))
			const rounds = 10
			for r := 0; r < rounds; r++ {
				for k := range paths {
					i := k
					if r%2 == 1 {
						i = len(paths) - 1 - k
					}
					n, t, err := paths[i](dur / rounds)
					if err != nil {
						return err
					}
					ns[i], ts[i] = ns[i]+n, ts[i]+t
				}
			}
			rate := func(i int) float64 { return ns[i] / ts[i].Seconds() }
			name := fmt.Sprintf("b%d_t%d", batch, toks)
			fmt.Printf("BENCH embed_raw_%s %.1f emb/s\n", name, rate(0))
			fmt.Printf("BENCH embed_svc_%s %.1f emb/s\n", name, rate(1))
			fmt.Printf("BENCH embed_svc_ratio_%s %.3f ratio\n", name, rate(1)/rate(0))
			if batch == 1 {
				fmt.Printf("BENCH embed_raw_with_work_%s %.1f emb/s\n", name, rate(2))
			}
		}
		_ = svc.Close()
	}
	// RSS in a fresh process so the raw session and benchmark buffers do not count.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	out, err := exec.Command(self, "-rss-child", graph, "-threads", fmt.Sprint(threads)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rss child: %v: %s", err, out)
	}
	fmt.Print(string(out))
	return nil
}

func mustRead(p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		panic(err)
	}
	return b
}

// measure runs f (one batch of size batch) repeatedly for about dur after a
// warm-up and returns the embeddings done and the time taken.
func measure(dur time.Duration, batch int, f func() error) (float64, time.Duration) {
	for i := 0; i < 3; i++ {
		_ = f()
	}
	n := 0
	start := time.Now()
	for time.Since(start) < dur {
		if err := f(); err != nil {
			panic(err)
		}
		n++
	}
	return float64(n * batch), time.Since(start)
}

// measureService has batch concurrent callers each embedding one text at a
// time, as bus handlers do, so the micro-batcher forms batches of size batch.
func measureService(dur time.Duration, e *embed.ONNX, texts []string, batch int) (float64, time.Duration, error) {
	ctx := context.Background()
	if _, err := e.Embed(ctx, texts[:batch]); err != nil {
		return 0, 0, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		count int
		first error
	)
	start := time.Now()
	for c := 0; c < batch; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := c; time.Since(start) < dur; i += batch {
				if _, err := e.Embed(ctx, []string{texts[i%len(texts)]}); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				n++
			}
			mu.Lock()
			count += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(count), time.Since(start), first
}

func rssMain(graph string, threads int) error {
	e, err := newEmbedder(graph, threads, 32)
	if err != nil {
		return err
	}
	defer e.Close()
	if loaded, _, err := procStatus(); err == nil {
		fmt.Printf("BENCH embed_rss_loaded_mb %.1f MB\n", loaded)
	}
	texts := make([]string, 32)
	for i := range texts {
		texts[i] = textOfTokens(e.Tokenizer(), 128, i)
	}
	for i := 0; i < 3; i++ {
		if _, err := e.Embed(context.Background(), texts); err != nil {
			return err
		}
	}
	rss, hwm, err := procStatus()
	if err != nil {
		return err
	}
	fmt.Printf("BENCH embed_rss_mb %.1f MB\n", rss)
	fmt.Printf("BENCH embed_rss_peak_mb %.1f MB\n", hwm)
	return nil
}

func procStatus() (rss, hwm float64, err error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb float64
		if _, e := fmt.Sscanf(sc.Text(), "VmRSS: %f kB", &kb); e == nil {
			rss = kb / 1024
		}
		if _, e := fmt.Sscanf(sc.Text(), "VmHWM: %f kB", &kb); e == nil {
			hwm = kb / 1024
		}
	}
	return rss, hwm, sc.Err()
}

// benchSession is the session configuration of both the raw and the
// service path: the embedder service's defaults (ORT threads do not spin,
// OWNYOU_EMBED_SPIN=false), changed by BENCH_SPIN, BENCH_NOARENA,
// BENCH_MEMPATTERN and BENCH_NOPREPACK for experiments.
func benchSession(threads int) embed.SessionConfig {
	cfg := embed.SessionConfig{Library: ortLib(), IntraOpThreads: threads, InterOpThreads: 1,
		NoSpin: os.Getenv("BENCH_SPIN") == "", NoArena: os.Getenv("BENCH_NOARENA") != "", MemPattern: os.Getenv("BENCH_MEMPATTERN") != ""}
	if os.Getenv("BENCH_NOPREPACK") != "" {
		cfg.Options = map[string]string{"session.disable_prepacking": "1"}
	}
	return cfg
}
