// Package profile turns classifications into the user's IAB profile: per
// category a confidence built from the evidence strengths, decayed by time,
// lowered by contradicting evidence in mutually exclusive groups, with the
// supporting emails as provenance.
//
// The profile is a pure fold over the evidence, ordered by time: building it
// twice from the same evidence gives the same profile, so a redelivered
// message (whose classifications are upserted by email and category) changes
// nothing. All functions are safe for concurrent use.
package profile

import (
	"math"
	"sort"
	"time"

	"github.com/ownyou/home/pkg/taxonomy"
)

// Update rules (issue #5).
const (
	confirmRate    = 0.3  // confirming: c + (1 − c)·s·0.3
	contradictRate = 0.5  // contradicting: c·(1 − 0.5·s)
	decayPerWeek   = 0.01 // decay: c·(1 − 0.01·weeks since last evidence)
	// MaxEmails caps the evidence links kept per category (most recent first).
	MaxEmails = 20
)

// First is the confidence after the first evidence of strength s.
func First(s float64) float64 { return clamp(s) }

// Confirm is the confidence c after further evidence of strength s.
func Confirm(c, s float64) float64 { return clamp(c + (1-c)*clamp(s)*confirmRate) }

// Contradict is the confidence c after evidence of strength s for another
// member of the same exclusive group.
func Contradict(c, s float64) float64 { return clamp(c * (1 - contradictRate*clamp(s))) }

// Decay is the confidence c after the given weeks without evidence.
func Decay(c, weeks float64) float64 {
	if weeks <= 0 {
		return c
	}
	return clamp(c * math.Max(0, 1-decayPerWeek*weeks))
}

func weeks(from, to time.Time) float64 { return to.Sub(from).Hours() / (24 * 7) }

func clamp(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// Evidence is one classification of one email, as the profile uses it.
type Evidence struct {
	Taxonomy   taxonomy.Kind
	CategoryID string
	EmailID    string
	Strength   float64 // the classification's confidence after judging
	At         time.Time
	Excerpt    string
	Backend    string
	Model      string
	Prompt     string
}

// Key identifies a profile category.
type Key struct {
	Taxonomy   taxonomy.Kind
	CategoryID string
}

// Link is an evidence link shown with a category.
type Link struct {
	EmailID  string    `json:"email_id"`
	Excerpt  string    `json:"excerpt"`
	Strength float64   `json:"strength"`
	At       time.Time `json:"at"`
	Backend  string    `json:"backend"`
	Model    string    `json:"model"`
	Prompt   string    `json:"prompt_version"`
}

// Entry is one category of the profile.
type Entry struct {
	Key
	Section taxonomy.Section
	Path    string
	Group   string // exclusive group key, "" if none
	// Confidence is decayed to the build time; Raw is the value at LastEvidence.
	Confidence   float64
	Raw          float64
	LastEvidence time.Time
	Evidence     int  // distinct emails supporting it
	Disputed     bool // the user disputed it: it no longer contributes
	Links        []Link
}

// GroupView shows an exclusive group: the primary value and the alternatives.
type GroupView struct {
	Key          string
	Primary      *Entry
	Alternatives []*Entry
}

// Profile is a built profile.
type Profile struct {
	Entries []*Entry // sorted by confidence, highest first
	Groups  []GroupView
}

// Build folds the evidence into a profile as of now. Evidence for unknown
// categories is ignored; duplicate (email, category) evidence counts once with
// its highest strength; disputed categories are kept, marked, with confidence
// 0, and neither contradict nor contribute to group primaries.
func Build(tax *taxonomy.Set, ev []Evidence, disputed map[Key]bool, now time.Time) *Profile {
	// Deduplicate by (category, email): a redelivered message counts once.
	type dk struct {
		k     Key
		email string
	}
	best := map[dk]Evidence{}
	for _, e := range ev {
		t := taxOf(tax, e.Taxonomy)
		if t == nil || t.Get(e.CategoryID) == nil {
			continue
		}
		d := dk{Key{e.Taxonomy, e.CategoryID}, e.EmailID}
		if old, ok := best[d]; !ok || e.Strength > old.Strength {
			best[d] = e
		}
	}
	list := make([]Evidence, 0, len(best))
	for _, e := range best {
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].At.Equal(list[j].At) {
			return list[i].At.Before(list[j].At)
		}
		if list[i].EmailID != list[j].EmailID {
			return list[i].EmailID < list[j].EmailID
		}
		return list[i].CategoryID < list[j].CategoryID
	})
	entries := map[Key]*Entry{}
	byGroup := map[string][]*Entry{}
	for _, e := range list {
		k := Key{e.Taxonomy, e.CategoryID}
		t := taxOf(tax, e.Taxonomy)
		c := t.Get(e.CategoryID)
		en := entries[k]
		if en == nil {
			en = &Entry{Key: k, Section: c.Section, Path: c.PathString(), Group: c.Group, Disputed: disputed[k]}
			entries[k] = en
			if c.Group != "" {
				byGroup[c.Group] = append(byGroup[c.Group], en)
			}
			en.Raw = First(e.Strength)
		} else {
			en.Raw = Confirm(Decay(en.Raw, weeks(en.LastEvidence, e.At)), e.Strength)
		}
		en.LastEvidence = e.At
		en.Evidence++
		en.Links = append(en.Links, Link{EmailID: e.EmailID, Excerpt: e.Excerpt, Strength: e.Strength, At: e.At, Backend: e.Backend, Model: e.Model, Prompt: e.Prompt})
		if en.Disputed || c.Group == "" {
			continue
		}
		for _, other := range byGroup[c.Group] {
			if other != en && !other.Disputed && t.Exclusive(other.CategoryID, e.CategoryID) {
				other.Raw = Contradict(Decay(other.Raw, weeks(other.LastEvidence, e.At)), e.Strength)
				other.LastEvidence = maxTime(other.LastEvidence, e.At)
			}
		}
	}
	p := &Profile{}
	for _, en := range entries {
		en.Confidence = Decay(en.Raw, weeks(en.LastEvidence, now))
		if en.Disputed {
			en.Confidence = 0
		}
		// Most recent evidence first, bounded.
		sort.SliceStable(en.Links, func(i, j int) bool { return en.Links[i].At.After(en.Links[j].At) })
		if len(en.Links) > MaxEmails {
			en.Links = en.Links[:MaxEmails]
		}
		p.Entries = append(p.Entries, en)
	}
	sortEntries(p.Entries)
	for _, g := range tax.Audience.Groups() {
		members := byGroup[g.Key]
		if len(members) == 0 {
			continue
		}
		sortEntries(members)
		v := GroupView{Key: g.Key}
		for _, m := range members {
			if m.Disputed {
				continue
			}
			if v.Primary == nil {
				v.Primary = m
			} else {
				v.Alternatives = append(v.Alternatives, m)
			}
		}
		if v.Primary != nil {
			p.Groups = append(p.Groups, v)
		}
	}
	return p
}

func sortEntries(es []*Entry) {
	sort.Slice(es, func(i, j int) bool {
		if es[i].Confidence != es[j].Confidence {
			return es[i].Confidence > es[j].Confidence
		}
		return es[i].CategoryID < es[j].CategoryID
	})
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func taxOf(s *taxonomy.Set, k taxonomy.Kind) *taxonomy.Taxonomy {
	switch k {
	case taxonomy.Audience:
		return s.Audience
	case taxonomy.Content:
		return s.Content
	}
	return nil
}
