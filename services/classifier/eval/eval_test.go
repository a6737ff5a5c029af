package eval_test

import (
	"testing"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
	"github.com/ownyou/home/services/classifier/eval"
	"github.com/ownyou/home/services/classifier/internal/testenv"
)

func TestLabeledSetHasAtLeast80EmailsWithValidTier1Labels(t *testing.T) {
	set, err := eval.Set()
	if err != nil {
		t.Fatal(err)
	}
	if len(set) < 80 {
		t.Fatalf("labeled set has %d emails, want ≥ 80", len(set))
	}
	if err := eval.Validate(testenv.Taxonomies(t), set); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, l := range set {
		if ids[l.ID] || l.Subject == "" || l.Body == "" || len(l.Content) == 0 || len(l.Interests) == 0 {
			t.Errorf("bad labeled email %+v", l)
		}
		ids[l.ID] = true
	}
}

func TestHeldOutSetHasAtLeast30EmailsWithValidLabelsNotInTheTuningSet(t *testing.T) {
	tuning, err := eval.Set()
	if err != nil {
		t.Fatal(err)
	}
	held, err := eval.HeldOut()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) < 30 {
		t.Fatalf("held-out set has %d emails, want ≥ 30", len(held))
	}
	if err := eval.Validate(testenv.Taxonomies(t), held); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range tuning {
		seen[l.ID] = true
		seen[l.Subject] = true
	}
	for _, l := range held {
		if seen[l.ID] || seen[l.Subject] || l.Body == "" || len(l.Content) == 0 || len(l.Interests) == 0 {
			t.Errorf("held-out email repeats the tuning set or is incomplete: %+v", l)
		}
		seen[l.ID] = true
	}
}

func TestBlindSetHasAtLeast40EmailsWithValidLabelsNotInTheOtherSets(t *testing.T) {
	seen := map[string]bool{}
	for _, get := range []func() ([]eval.Labeled, error){eval.Set, eval.HeldOut} {
		set, err := get()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range set {
			seen[l.ID] = true
			seen[l.Subject] = true
		}
	}
	blind, err := eval.Blind()
	if err != nil {
		t.Fatal(err)
	}
	if len(blind) < 40 {
		t.Fatalf("blind set has %d emails, want ≥ 40", len(blind))
	}
	if err := eval.Validate(testenv.Taxonomies(t), blind); err != nil {
		t.Fatal(err)
	}
	for _, l := range blind {
		if seen[l.ID] || seen[l.Subject] || l.Body == "" || len(l.Content) == 0 || len(l.Interests) == 0 {
			t.Errorf("blind email repeats another set or is incomplete: %+v", l)
		}
		seen[l.ID] = true
	}
}

func TestScoreCountsTopOnePredictionsAndAbsentIntent(t *testing.T) {
	tax := testenv.Taxonomies(t)
	set := []eval.Labeled{
		{ID: "1", Content: []string{"Travel"}, Interests: []string{"Travel"}},
		{ID: "2", Content: []string{"Pets"}, Interests: []string{"Pets"}, PurchaseIntent: []string{"Pet Services"}},
	}
	travel := findTop(t, tax.Content, "Travel")
	pets := findTop(t, tax.Content, "Pets")
	cls := []core.Classification{
		{EmailID: "1", Section: taxonomy.SectionContent, CategoryID: travel, Confidence: 0.9},
		{EmailID: "1", Section: taxonomy.SectionContent, CategoryID: pets, Confidence: 0.2},
		{EmailID: "2", Section: taxonomy.SectionContent, CategoryID: travel, Confidence: 0.8},
	}
	r := eval.Score("x", tax, set, cls)
	c := r.Kinds[eval.KindContent]
	if c.TP != 1 || c.FP != 2 || c.FN != 1 || c.Correct != 1 || c.N != 2 {
		t.Errorf("content metrics = %+v", *c)
	}
	pi := r.Kinds[eval.KindPurchaseIntent]
	if pi.Correct != 1 || pi.N != 2 || pi.FN != 1 {
		t.Errorf("purchase intent metrics = %+v (no intent predicted where none is labeled counts as right)", *pi)
	}
	if r.Tier1Accuracy() != 0.25 {
		t.Errorf("Tier1Accuracy = %v, want 0.25", r.Tier1Accuracy())
	}
}

func findTop(t *testing.T, tx *taxonomy.Taxonomy, name string) string {
	for _, c := range tx.Roots() {
		if c.Name == name {
			return c.ID
		}
	}
	t.Fatalf("no root %q", name)
	return ""
}
