package taxonomy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedIAB finds ../shared/data/iab via OWNYOU_SHARED_DIR or the repo's sibling.
func sharedIAB(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OWNYOU_SHARED_DIR")
	if dir == "" {
		wd, _ := os.Getwd()
		for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(filepath.Dir(d), "shared")
				break
			}
		}
	}
	p := filepath.Join(dir, "data", "iab")
	if _, err := os.Stat(filepath.Join(p, AudienceFile)); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("IAB taxonomies missing at %s: %v", p, err)
		}
		t.Skipf("IAB taxonomies not found at %s (set OWNYOU_SHARED_DIR)", p)
	}
	return p
}

func TestLoadReadsBothTaxonomiesWithRealCounts(t *testing.T) {
	set, err := Load(sharedIAB(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Audience.Len(); got != 1558 {
		t.Errorf("audience segments = %d, want 1558", got)
	}
	if got := set.Content.Len(); got != 704 {
		t.Errorf("content categories = %d, want 704", got)
	}
	c := set.Audience.Get("611")
	if c == nil || c.PathString() != "Interest > Sports > Auto Racing > Motorcycle Sports" || c.Name != "Motorcycle Sports" || c.Tier() != 4 {
		t.Fatalf("611 = %+v", c)
	}
	if top := set.Audience.Top("611"); top.ID != "607" {
		t.Errorf("Top(611) = %s, want 607 (Interest > Sports)", top.ID)
	}
	if top := set.Content.Top("119"); top == nil || top.Name != "Business and Finance" {
		t.Errorf("content Top(119) = %+v", top)
	}
	if got := set.Content.Get("119").PathString(); got != "Business and Finance > Industries > Biotech and Biomedical Industry" {
		t.Errorf("content 119 path = %q", got)
	}
	if n := len(set.Content.Roots()); n < 30 {
		t.Errorf("content roots = %d", n)
	}
}

func TestSectionsFollowTheIDRanges(t *testing.T) {
	set, err := Load(sharedIAB(t))
	if err != nil {
		t.Fatal(err)
	}
	a := set.Audience
	cases := map[string]Section{
		"3": SectionDemographics, "49": SectionDemographics, "61": SectionHousehold,
		"161": SectionPersonalAttributes, "170": SectionPersonalFinance, "611": SectionInterests,
		"1666": SectionPurchaseIntent, "1": SectionNone, "53": SectionNone, "206": SectionNone, "752": SectionNone,
	}
	for id, want := range cases {
		if got := a.Get(id).Section; got != want {
			t.Errorf("section(%s) = %q, want %q", id, got, want)
		}
	}
	total := 0
	for _, s := range AudienceSections {
		n := len(a.InSection(s))
		if n == 0 {
			t.Errorf("section %s empty", s)
		}
		total += n
	}
	if total < 1500 {
		t.Errorf("classifiable audience categories = %d", total)
	}
	for _, c := range a.InSection(SectionHousehold) {
		if c.Extension {
			t.Errorf("extension %s offered for classification", c.ID)
		}
	}
}

func TestExclusiveGroupsContradictOnlyAcrossMembers(t *testing.T) {
	set, err := Load(sharedIAB(t))
	if err != nil {
		t.Fatal(err)
	}
	a := set.Audience
	cases := []struct {
		a, b string
		want bool
	}{
		{"3", "4", true},     // two age ranges
		{"49", "50", true},   // female vs male
		{"161", "162", true}, // married vs single
		{"21", "22", false},  // both College Education
		{"21", "19", true},   // college vs secondary
		{"3", "49", false},   // different groups
		{"611", "612", false},
		{"3", "3", false},
	}
	for _, c := range cases {
		if got := a.Exclusive(c.a, c.b); got != c.want {
			t.Errorf("Exclusive(%s,%s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if g := a.Group("gender"); g == nil || len(g.Members) != 4 {
		t.Errorf("gender group = %+v", g)
	}
	if a.Get("50").Group != "gender" || a.Get("611").Group != "" {
		t.Error("group membership marked wrongly")
	}
}

func TestParseRejectsMalformedFiles(t *testing.T) {
	cases := map[string]struct {
		parse func(r *strings.Reader) error
	}{
		"audience without header": {func(r *strings.Reader) error { _, err := ParseAudience(r); return err }},
		"content without header":  {func(r *strings.Reader) error { _, err := ParseContent(r); return err }},
	}
	for name, c := range cases {
		if err := c.parse(strings.NewReader("a\tb\tc\n1\t2\t3\n")); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", name, err)
		}
	}
	bad := "Unique ID\tParent\tName\tTier 1\tTier 2\tTier 3\tTier 4\tExt\n1\t99\tX\tX\t\t\t\t\n"
	if _, err := ParseContent(strings.NewReader(bad)); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown parent: err = %v", err)
	}
	dup := "Unique ID\tParent\tName\tTier 1\tTier 2\tTier 3\tTier 4\tExt\n1\t\tX\tX\t\t\t\t\n1\t\tY\tY\t\t\t\t\n"
	if _, err := ParseContent(strings.NewReader(dup)); !errors.Is(err, ErrFormat) {
		t.Errorf("duplicate id: err = %v", err)
	}
}
