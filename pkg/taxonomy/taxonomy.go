// Package taxonomy loads the IAB Audience Taxonomy 1.1 and Content Taxonomy 3.1
// from their published TSV files into immutable trees with ids, parents, tier
// paths, sections and mutually exclusive groups.
//
// A loaded Taxonomy is read-only and safe for concurrent use.
package taxonomy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kind names one of the two IAB taxonomies.
type Kind string

// The two taxonomies the classifier uses.
const (
	Audience Kind = "audience"
	Content  Kind = "content"
)

// Section is a part of a taxonomy offered to the classifier as one unit.
type Section string

// Sections of Audience 1.1 (by id range, see SOURCE.md) and the single section of Content 3.1.
const (
	SectionNone               Section = ""
	SectionDemographics       Section = "demographics"
	SectionHousehold          Section = "household"
	SectionPersonalAttributes Section = "personal_attributes"
	SectionPersonalFinance    Section = "personal_finance"
	SectionInterests          Section = "interests"
	SectionPurchaseIntent     Section = "purchase_intent"
	SectionContent            Section = "content"
)

// AudienceSections lists the audience sections in the order the classifier visits them.
var AudienceSections = []Section{
	SectionDemographics, SectionHousehold, SectionPersonalAttributes,
	SectionPersonalFinance, SectionInterests, SectionPurchaseIntent,
}

type idRange struct {
	lo, hi  int
	section Section
}

// audienceRanges are the id ranges of the original system (SOURCE.md). Ids
// outside every range are structural nodes (e.g. "Demographic | Household
// Data") and belong to no section.
var audienceRanges = []idRange{
	{1, 52, SectionDemographics},
	{54, 158, SectionHousehold},
	{159, 162, SectionPersonalAttributes},
	{165, 197, SectionPersonalFinance},
	{207, 751, SectionInterests},
	{754, 1679, SectionPurchaseIntent},
}

// Group is a set of mutually exclusive categories: a person has one age range,
// one gender, one household income. Members are the group parent's children;
// deeper descendants count as their child-level ancestor.
type Group struct {
	Key      string // stable name, e.g. "age_range"
	ParentID string // the category whose children are exclusive
	Members  []string
}

// exclusiveGroups names the audience nodes whose children exclude each other,
// with the parent's expected tier path so a different taxonomy fails loudly.
var exclusiveGroups = []struct {
	key, parentID, path string
}{
	{"age_range", "2", "Demographic > Age Range"},
	{"education", "17", "Demographic > Education & Occupation > Education (Highest Level)"},
	{"employment_status", "39", "Demographic > Education & Occupation > Employment Status"},
	{"gender", "48", "Demographic > Gender"},
	{"household_income", "60", "Demographic > Household Data > Household Income (USD)"},
	{"length_of_residence", "73", "Demographic > Household Data > Length of Residence"},
	{"median_home_value", "102", "Demographic > Household Data > Median Home Value (USD)"},
	{"monthly_housing_payment", "114", "Demographic > Household Data > Monthly Housing Payment (USD)"},
	{"number_of_adults", "121", "Demographic > Household Data > Number of Adults"},
	{"number_of_children", "125", "Demographic > Household Data > Number of Children"},
	{"number_of_individuals", "130", "Demographic > Household Data > Number of Individuals"},
	{"property_type", "143", "Demographic > Household Data > Property Type"},
	{"urbanization", "146", "Demographic > Household Data > Urbanization"},
	{"marital_status", "159", "Demographic > Marital Status"},
	{"income", "164", "Demographic > Personal Finance > Income (USD)"},
	{"personal_affluence", "176", "Demographic > Personal Finance > Personal Level Affluence (USD)"},
	{"affluence_band", "191", "Demographic > Personal Finance > Personal Level Affluence Band"},
}

// Category is one node of a taxonomy.
type Category struct {
	ID       string
	ParentID string
	Name     string   // the last tier's name
	Path     []string // tier names from tier 1 down to this node
	Section  Section
	// Group is the key of the exclusive group this category is a member of, or "".
	Group string
	// Extension marks IAB "*… Extension" placeholders (country, zip, language):
	// they carry a value outside the taxonomy and are never classification targets.
	Extension bool
}

// Tier is the depth of the category, 1 for a root.
func (c *Category) Tier() int { return len(c.Path) }

// PathString joins the tier path with " > ".
func (c *Category) PathString() string { return strings.Join(c.Path, " > ") }

// Taxonomy is an immutable tree of categories.
type Taxonomy struct {
	Kind     Kind
	cats     []*Category // file order
	byID     map[string]*Category
	children map[string][]*Category
	groups   map[string]*Group
}

// Errors returned by the parsers.
var (
	ErrFormat = errors.New("taxonomy: unexpected file format")
)

// Files are the TSV names expected in a taxonomy directory.
const (
	AudienceFile = "audience-taxonomy-1.1.tsv"
	ContentFile  = "content-taxonomy-3.1.tsv"
)

// Set holds both taxonomies.
type Set struct {
	Audience *Taxonomy
	Content  *Taxonomy
}

// Load reads both TSVs from dir (AudienceFile and ContentFile).
func Load(dir string) (*Set, error) {
	a, err := loadFile(filepath.Join(dir, AudienceFile), ParseAudience)
	if err != nil {
		return nil, err
	}
	c, err := loadFile(filepath.Join(dir, ContentFile), ParseContent)
	if err != nil {
		return nil, err
	}
	return &Set{Audience: a, Content: c}, nil
}

func loadFile(path string, parse func(io.Reader) (*Taxonomy, error)) (*Taxonomy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open taxonomy: %w", err)
	}
	defer f.Close()
	t, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Base(path), err)
	}
	return t, nil
}

// Get returns the category with the id, or nil.
func (t *Taxonomy) Get(id string) *Category { return t.byID[id] }

// Len is the number of categories.
func (t *Taxonomy) Len() int { return len(t.cats) }

// All returns the categories in file order; the slice must not be modified.
func (t *Taxonomy) All() []*Category { return t.cats }

// Children returns the direct children of id in file order.
func (t *Taxonomy) Children(id string) []*Category { return t.children[id] }

// Roots returns the tier-1 categories.
func (t *Taxonomy) Roots() []*Category { return t.children[""] }

// InSection returns the classifiable categories of a section (extensions excluded), in file order.
func (t *Taxonomy) InSection(s Section) []*Category {
	var out []*Category
	for _, c := range t.cats {
		if c.Section == s && !c.Extension {
			out = append(out, c)
		}
	}
	return out
}

// Ancestors returns the chain from the root down to and including id's parent.
func (t *Taxonomy) Ancestors(id string) []*Category {
	var chain []*Category
	c := t.byID[id]
	for c != nil && c.ParentID != "" {
		c = t.byID[c.ParentID]
		if c == nil {
			break
		}
		chain = append(chain, c)
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

// IsAncestor reports whether a is a proper ancestor of b.
func (t *Taxonomy) IsAncestor(a, b string) bool {
	for _, c := range t.Ancestors(b) {
		if c.ID == a {
			return true
		}
	}
	return false
}

// Top returns the "Tier-1" category the user thinks of: for Content the root;
// for Audience the child of the root ("Interest > Travel", "Purchase Intent* >
// Travel and Tourism"), since the audience roots are only section headers.
func (t *Taxonomy) Top(id string) *Category {
	c := t.byID[id]
	if c == nil {
		return nil
	}
	depth := 1
	if t.Kind == Audience {
		depth = 2
	}
	if c.Tier() <= depth {
		return c
	}
	anc := t.Ancestors(id)
	if len(anc) < depth {
		return c
	}
	return anc[depth-1]
}

// Group returns the exclusive group with the key, or nil.
func (t *Taxonomy) Group(key string) *Group { return t.groups[key] }

// Groups returns the exclusive groups sorted by key.
func (t *Taxonomy) Groups() []*Group {
	out := make([]*Group, 0, len(t.groups))
	for _, g := range t.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// GroupMember returns the member of the category's exclusive group that the
// category is or descends from ("" when it is in no group).
func (t *Taxonomy) GroupMember(id string) string {
	c := t.byID[id]
	if c == nil || c.Group == "" {
		return ""
	}
	g := t.groups[c.Group]
	if c.ParentID == g.ParentID {
		return c.ID
	}
	for _, a := range t.Ancestors(id) {
		if a.ParentID == g.ParentID {
			return a.ID
		}
	}
	return ""
}

// Exclusive reports whether a and b are different members of one exclusive
// group, so evidence for one contradicts the other.
func (t *Taxonomy) Exclusive(a, b string) bool {
	ca, cb := t.byID[a], t.byID[b]
	if ca == nil || cb == nil || ca.Group == "" || ca.Group != cb.Group {
		return false
	}
	return t.GroupMember(a) != t.GroupMember(b)
}

// ParseAudience parses the Audience Taxonomy 1.1 TSV: an empty first column,
// then Unique ID, Parent ID, Condensed Name, Tier 1..6, Extension Notes.
func ParseAudience(r io.Reader) (*Taxonomy, error) {
	rows, err := readTSV(r)
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 || len(rows[0]) < 10 || strings.TrimSpace(rows[0][1]) != "Unique ID" || strings.TrimSpace(rows[0][4]) != "Tier 1" {
		return nil, fmt.Errorf("%w: audience header %q", ErrFormat, firstRow(rows))
	}
	t := newTaxonomy(Audience)
	for i, row := range rows[1:] {
		if isBlank(row) {
			continue
		}
		if len(row) < 10 {
			return nil, fmt.Errorf("%w: audience line %d has %d columns", ErrFormat, i+2, len(row))
		}
		id := strings.TrimSpace(row[1])
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("%w: audience line %d id %q", ErrFormat, i+2, id)
		}
		path := tiers(row[4:10])
		if len(path) == 0 {
			return nil, fmt.Errorf("%w: audience line %d has no tiers", ErrFormat, i+2)
		}
		c := &Category{ID: id, ParentID: strings.TrimSpace(row[2]), Name: path[len(path)-1], Path: path, Section: audienceSection(n)}
		c.Extension = strings.HasPrefix(c.Name, "*")
		if c.ParentID == "" {
			c.Section = SectionNone // roots are only section headers
		}
		if err := t.add(c); err != nil {
			return nil, fmt.Errorf("audience line %d: %w", i+2, err)
		}
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	for _, g := range exclusiveGroups {
		p := t.byID[g.parentID]
		if p == nil || p.PathString() != g.path {
			return nil, fmt.Errorf("%w: exclusive group %s expects %q at id %s", ErrFormat, g.key, g.path, g.parentID)
		}
		grp := &Group{Key: g.key, ParentID: g.parentID}
		for _, ch := range t.children[g.parentID] {
			grp.Members = append(grp.Members, ch.ID)
		}
		t.groups[g.key] = grp
		t.markGroup(g.parentID, g.key)
	}
	return t, nil
}

func (t *Taxonomy) markGroup(id, key string) {
	for _, ch := range t.children[id] {
		ch.Group = key
		t.markGroup(ch.ID, key)
	}
}

// ParseContent parses the Content Taxonomy 3.1 TSV: a title row, then Unique
// ID, Parent, Name, Tier 1..4, Extension.
func ParseContent(r io.Reader) (*Taxonomy, error) {
	rows, err := readTSV(r)
	if err != nil {
		return nil, err
	}
	hdr := -1
	for i, row := range rows {
		if len(row) >= 7 && strings.TrimSpace(row[0]) == "Unique ID" && strings.TrimSpace(row[3]) == "Tier 1" {
			hdr = i
			break
		}
		if i > 3 {
			break
		}
	}
	if hdr < 0 {
		return nil, fmt.Errorf("%w: content header not found in %q", ErrFormat, firstRow(rows))
	}
	t := newTaxonomy(Content)
	for i, row := range rows[hdr+1:] {
		if isBlank(row) {
			continue
		}
		if len(row) < 7 {
			return nil, fmt.Errorf("%w: content line %d has %d columns", ErrFormat, hdr+i+2, len(row))
		}
		path := tiers(row[3:7])
		id := strings.TrimSpace(row[0])
		if id == "" || len(path) == 0 {
			return nil, fmt.Errorf("%w: content line %d id %q", ErrFormat, hdr+i+2, id)
		}
		c := &Category{ID: id, ParentID: strings.TrimSpace(row[1]), Name: path[len(path)-1], Path: path, Section: SectionContent}
		if err := t.add(c); err != nil {
			return nil, fmt.Errorf("content line %d: %w", hdr+i+2, err)
		}
	}
	if err := t.finish(); err != nil {
		return nil, err
	}
	return t, nil
}

func newTaxonomy(k Kind) *Taxonomy {
	return &Taxonomy{Kind: k, byID: map[string]*Category{}, children: map[string][]*Category{}, groups: map[string]*Group{}}
}

func (t *Taxonomy) add(c *Category) error {
	if _, dup := t.byID[c.ID]; dup {
		return fmt.Errorf("%w: duplicate id %s", ErrFormat, c.ID)
	}
	t.byID[c.ID] = c
	t.cats = append(t.cats, c)
	return nil
}

func (t *Taxonomy) finish() error {
	for _, c := range t.cats {
		if c.ParentID != "" && t.byID[c.ParentID] == nil {
			return fmt.Errorf("%w: id %s has unknown parent %s", ErrFormat, c.ID, c.ParentID)
		}
		t.children[c.ParentID] = append(t.children[c.ParentID], c)
	}
	// A cycle would make Ancestors loop: walk each chain with a bound.
	for _, c := range t.cats {
		p, n := c, 0
		for p.ParentID != "" {
			p = t.byID[p.ParentID]
			if n++; n > len(t.cats) {
				return fmt.Errorf("%w: parent cycle at id %s", ErrFormat, c.ID)
			}
		}
	}
	return nil
}

func audienceSection(id int) Section {
	for _, r := range audienceRanges {
		if id >= r.lo && id <= r.hi {
			return r.section
		}
	}
	return SectionNone
}

func tiers(cols []string) []string {
	var out []string
	for _, c := range cols {
		c = strings.TrimSpace(c)
		if c == "" {
			break
		}
		out = append(out, c)
	}
	return out
}

func readTSV(r io.Reader) ([][]string, error) {
	var rows [][]string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		rows = append(rows, strings.Split(line, "\t"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tsv: %w", err)
	}
	return rows, nil
}

func isBlank(row []string) bool {
	for _, c := range row {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

func firstRow(rows [][]string) string {
	if len(rows) == 0 {
		return ""
	}
	return strings.Join(rows[0], "\t")
}
