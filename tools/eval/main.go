// Command eval classifies the labeled email set with each available backend
// and prints precision, recall and accuracy as BENCH lines.
//
// Env: OWNYOU_SHARED_DIR (taxonomies), OWNYOU_WORDVEC_PATH (wink vectors JSON),
// OWNYOU_MODEL_CACHE (cache dir, default ./.data/models).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/pkg/wordvec"
	"github.com/ownyou/home/services/classifier/core"
	"github.com/ownyou/home/services/classifier/eval"
	"github.com/ownyou/home/services/classifier/local"
)

func main() {
	verbose := flag.Bool("v", false, "print every top-1 miss")
	flag.Parse()
	if err := run(context.Background(), *verbose); err != nil {
		slog.Error("eval failed", "err", err)
		os.Exit(1)
	}
}

func sharedDir() string {
	if d := os.Getenv("OWNYOU_SHARED_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "shared")
}

func run(ctx context.Context, verbose bool) error {
	tax, err := taxonomy.Load(filepath.Join(sharedDir(), "data", "iab"))
	if err != nil {
		return err
	}
	set, err := eval.Set()
	if err != nil {
		return err
	}
	if err := eval.Validate(tax, set); err != nil {
		return err
	}
	cache := os.Getenv("OWNYOU_MODEL_CACHE")
	if cache == "" {
		cache = filepath.Join(".data", "models")
	}
	src := os.Getenv("OWNYOU_WORDVEC_PATH")
	if src == "" {
		return fmt.Errorf("OWNYOU_WORDVEC_PATH is required for the local backend eval")
	}
	wv, err := wordvec.Open(src, cache, wordvec.Options{MaxWords: wordvec.LiteWords})
	if err != nil {
		return err
	}
	lb, err := local.New(ctx, local.Config{Embedder: wv, Taxonomies: tax})
	if err != nil {
		return err
	}
	for _, b := range []core.Backend{lb} {
		r, err := eval.Run(ctx, b, tax, set, 25)
		if err != nil {
			return err
		}
		print(r, "wordvec", verbose)
	}
	return nil
}

func print(r *eval.Report, variant string, verbose bool) {
	name := r.Backend + "_" + variant
	fmt.Printf("BENCH eval_%s_emails %d count\n", name, r.Kinds[eval.KindContent].N)
	for _, k := range eval.Kinds {
		m := r.Kinds[k]
		fmt.Printf("BENCH eval_%s_%s_precision %.3f ratio\n", name, k, m.Precision())
		fmt.Printf("BENCH eval_%s_%s_recall %.3f ratio\n", name, k, m.Recall())
		fmt.Printf("BENCH eval_%s_%s_accuracy %.3f ratio\n", name, k, m.Accuracy())
	}
	fmt.Printf("BENCH eval_%s_tier1_accuracy %.3f ratio\n", name, r.Tier1Accuracy())
	if verbose {
		for _, m := range r.Misses {
			fmt.Fprintln(os.Stderr, "miss", m)
		}
	}
}
