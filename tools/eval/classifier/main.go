// Command eval (tools/eval/classifier) classifies the labeled email sets with each available backend
// and prints precision, recall and accuracy as BENCH lines: the local backend
// on the tuning set and the held-out set (both development data) and,
// separately, on the blind set (written before development, scored once).
//
// Env: OWNYOU_SHARED_DIR (taxonomies), OWNYOU_WORDVEC_PATH (wink vectors JSON),
// OWNYOU_MODEL_DIR (cache dir, default ./.data/models).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/pkg/wordvec"
	"github.com/ownyou/home/services/classifier/core"
	"github.com/ownyou/home/services/classifier/eval"
	"github.com/ownyou/home/services/classifier/fakeoai"
	"github.com/ownyou/home/services/classifier/llm"
	"github.com/ownyou/home/services/classifier/local"
)

func main() {
	verbose := flag.Bool("v", false, "print every top-1 miss")
	noBlind := flag.Bool("no-blind", false, "leave the blind set out (development runs: it is scored once, at the end)")
	flag.Parse()
	if err := run(context.Background(), *verbose, !*noBlind); err != nil {
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

func run(ctx context.Context, verbose, withBlind bool) error {
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
	cache := os.Getenv("OWNYOU_MODEL_DIR")
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
	r, err := eval.Run(ctx, lb, tax, set, 25)
	if err != nil {
		return err
	}
	print(r, "wordvec", verbose)
	// The held-out set was written after the first calibration; the
	// generalization round developed on it as well as on the tuning set.
	held, err := eval.HeldOut()
	if err != nil {
		return err
	}
	if err := eval.Validate(tax, held); err != nil {
		return err
	}
	r, err = eval.Run(ctx, lb, tax, held, 25)
	if err != nil {
		return err
	}
	print(r, "wordvec_heldout", verbose)
	// The blind set was written before the generalization round and is
	// scored once: the honest expectation for other mail.
	if withBlind {
		blind, err := eval.Blind()
		if err != nil {
			return err
		}
		if err := eval.Validate(tax, blind); err != nil {
			return err
		}
		r, err := eval.Run(ctx, lb, tax, blind, 25)
		if err != nil {
			return err
		}
		print(r, "wordvec_blind", verbose)
	}

	// The LLM backend against the fake OpenAI-compatible server: its scripted
	// (word-overlap) answers measure the plumbing, not a model's quality.
	fake := httptest.NewServer(&fakeoai.Server{})
	defer fake.Close()
	budget := &llm.MemoryBudget{}
	b, err := llm.New(ctx, llm.Config{
		BaseURL: fake.URL + "/v1", Model: "fakeoai", Taxonomies: tax, Embedder: wv, Budget: budget,
		Sections: []taxonomy.Section{taxonomy.SectionContent, taxonomy.SectionInterests, taxonomy.SectionPurchaseIntent},
	})
	if err != nil {
		return err
	}
	r, err = eval.Run(ctx, b, tax, set, 25)
	if err != nil {
		return err
	}
	print(r, "fakeoai", verbose)
	fmt.Printf("BENCH eval_llm_fakeoai_tokens %d tokens\n", budget.Status().Used)
	return shortlistRecall(ctx, b, tax, set)
}

// shortlistRecall prints how often an email's gold Tier-1 categories are
// reachable through the shortlist the LLM sees (batches of 25): the ceiling
// of the LLM backend's recall, whatever the model.
func shortlistRecall(ctx context.Context, b *llm.Backend, tax *taxonomy.Set, set []eval.Labeled) error {
	hit := map[string]int{}
	total := map[string]int{}
	for i := 0; i < len(set); i += 25 {
		part := set[i:min(i+25, len(set))]
		var emails []core.Email
		for _, l := range part {
			emails = append(emails, l.Email())
		}
		sl, err := b.Shortlist(ctx, emails)
		if err != nil {
			return err
		}
		tops := map[taxonomy.Section]map[string]bool{}
		for sec, cats := range sl {
			tops[sec] = map[string]bool{}
			t := tax.Audience
			if sec == taxonomy.SectionContent {
				t = tax.Content
			}
			for _, c := range cats {
				if top := t.Top(c.ID); top != nil {
					tops[sec][strings.ToLower(top.Name)] = true
				}
			}
		}
		for _, l := range part {
			for kind, sec := range map[string]taxonomy.Section{eval.KindContent: taxonomy.SectionContent, eval.KindInterests: taxonomy.SectionInterests, eval.KindPurchaseIntent: taxonomy.SectionPurchaseIntent} {
				gold := map[string][]string{eval.KindContent: l.Content, eval.KindInterests: l.Interests, eval.KindPurchaseIntent: l.PurchaseIntent}[kind]
				for _, g := range gold {
					total[kind]++
					if tops[sec][strings.ToLower(g)] {
						hit[kind]++
					}
				}
			}
		}
	}
	for _, k := range eval.Kinds {
		if total[k] > 0 {
			fmt.Printf("BENCH eval_llm_shortlist_%s_recall %.3f ratio\n", k, float64(hit[k])/float64(total[k]))
		}
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
