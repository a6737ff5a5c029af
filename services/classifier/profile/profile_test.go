package profile_test

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/internal/testenv"
	"github.com/ownyou/home/services/classifier/profile"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestUpdateRulesFollowTheFormulas(t *testing.T) {
	cases := []struct {
		name      string
		got, want float64
	}{
		{"first evidence is its strength", profile.First(0.6), 0.6},
		{"confirming adds (1-c)·s·0.3", profile.Confirm(0.6, 0.5), 0.6 + 0.4*0.5*0.3},
		{"contradicting multiplies by 1-0.5·s", profile.Contradict(0.8, 0.6), 0.8 * 0.7},
		{"decay 1% per week", profile.Decay(0.5, 10), 0.45},
		{"decay floors at zero", profile.Decay(0.5, 200), 0},
		{"no decay for negative weeks", profile.Decay(0.5, -3), 0.5},
		{"strength is clamped", profile.First(1.7), 1},
	}
	for _, c := range cases {
		if !near(c.got, c.want) {
			t.Errorf("%s: got %v want %v", c.name, c.got, c.want)
		}
	}
}

func TestBuildConfirmsContradictsAndDecays(t *testing.T) {
	tax := testenv.Taxonomies(t)
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	ev := []profile.Evidence{
		{Taxonomy: taxonomy.Audience, CategoryID: "49", EmailID: "m1", Strength: 0.8, At: t0},           // female
		{Taxonomy: taxonomy.Audience, CategoryID: "49", EmailID: "m2", Strength: 0.5, At: t0.Add(week)}, // confirm after 1 week
		{Taxonomy: taxonomy.Audience, CategoryID: "50", EmailID: "m3", Strength: 0.4, At: t0.Add(week)}, // male contradicts
		{Taxonomy: taxonomy.Audience, CategoryID: "611", EmailID: "m1", Strength: 0.7, At: t0},
	}
	p := profile.Build(tax, ev, nil, t0.Add(3*week))
	got := map[string]*profile.Entry{}
	for _, e := range p.Entries {
		got[e.CategoryID] = e
	}
	f := profile.Confirm(profile.Decay(0.8, 1), 0.5)
	// m3 (id order after m2) contradicts female at the same instant.
	f = profile.Contradict(f, 0.4)
	if e := got["49"]; e == nil || !near(e.Raw, f) || !near(e.Confidence, profile.Decay(f, 2)) || e.Evidence != 2 {
		t.Errorf("female = %+v, want raw %v", e, f)
	}
	// Female's evidence all came before male's first, so male keeps its first value.
	if e := got["50"]; e == nil || !near(e.Raw, 0.4) {
		t.Errorf("male = %+v", e)
	}
	if e := got["611"]; e == nil || !near(e.Confidence, profile.Decay(0.7, 3)) {
		t.Errorf("motorcycle sports = %+v", e)
	}
	if len(p.Groups) != 1 || p.Groups[0].Key != "gender" || p.Groups[0].Primary.CategoryID != "49" || len(p.Groups[0].Alternatives) != 1 {
		t.Errorf("groups = %+v", p.Groups)
	}
	if l := got["49"].Links; len(l) != 2 || l[0].EmailID != "m2" {
		t.Errorf("links not most-recent-first: %+v", l)
	}
}

func TestRedeliveredEvidenceChangesNothing(t *testing.T) {
	tax := testenv.Taxonomies(t)
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	ev := []profile.Evidence{
		{Taxonomy: taxonomy.Content, CategoryID: "653", EmailID: "m1", Strength: 0.7, At: t0},
		{Taxonomy: taxonomy.Audience, CategoryID: "3", EmailID: "m2", Strength: 0.6, At: t0},
	}
	once := profile.Build(tax, ev, nil, t0)
	twice := profile.Build(tax, append(append([]profile.Evidence{}, ev...), ev...), nil, t0)
	if !reflect.DeepEqual(once, twice) {
		t.Errorf("duplicate evidence changed the profile:\n%+v\n%+v", once.Entries[0], twice.Entries[0])
	}
}

func TestDisputedCategoryStopsContributing(t *testing.T) {
	tax := testenv.Taxonomies(t)
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	ev := []profile.Evidence{
		{Taxonomy: taxonomy.Audience, CategoryID: "161", EmailID: "m1", Strength: 0.9, At: t0}, // married
		{Taxonomy: taxonomy.Audience, CategoryID: "162", EmailID: "m2", Strength: 0.5, At: t0}, // single
		{Taxonomy: taxonomy.Audience, CategoryID: "999999", EmailID: "m3", Strength: 0.9, At: t0},
	}
	disputed := map[profile.Key]bool{{Taxonomy: taxonomy.Audience, CategoryID: "161"}: true}
	p := profile.Build(tax, ev, disputed, t0)
	for _, e := range p.Entries {
		switch e.CategoryID {
		case "161":
			if !e.Disputed || e.Confidence != 0 {
				t.Errorf("disputed entry = %+v", e)
			}
		case "162":
			if !near(e.Confidence, 0.5) {
				t.Errorf("single lowered by a disputed contradiction: %v", e.Confidence)
			}
		default:
			t.Errorf("unexpected entry %s", e.CategoryID)
		}
	}
	if len(p.Groups) != 1 || p.Groups[0].Primary.CategoryID != "162" || len(p.Groups[0].Alternatives) != 0 {
		t.Errorf("group view = %+v", p.Groups)
	}
}
