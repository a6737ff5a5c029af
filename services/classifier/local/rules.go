package local

import (
	"context"
	"regexp"
	"sort"
	"strings"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
)

// signals are what the sender/keyword rules read from one email.
type signals struct {
	transactional bool            // an order, booking, receipt, quote, appointment, renewal
	newsletter    bool            // a list mailing rather than an action
	topics        map[string]bool // Tier-1 names a rule asserts, lower-cased
	ruledOut      map[string]bool // Tier-1 names a rule rules out, lower-cased
}

var (
	reTransactional = regexp.MustCompile(`\b(order(ed)?|booking|booked|book (a|your)|reservation|reserved|confirm(ed|ation)|receipt|invoice|tickets?|e-ticket|appointment|deliver(y|ed)|dispatched|shipped|quote[sd]?|test drive|renew(s|al)?|pre-order|prescription|membership|purchase|subscription|checkout|matching your search|match your search|saved search|new listings?|jobs? for|jobs? matching|role|recruit(er|ing)|enrol(led|ment)?|enroll(ed|ment)?|course|consultation|reminder|is due|are due|due (this|next)|deposit|mortgage|quote|\d+% off|sale)\b`)
	reNewsletter    = regexp.MustCompile(`(?i)\b(newsletter|unsubscribe|weekly|digest|this week in|briefing|today in)\b`)
)

// topicRule asserts Tier-1 categories (by name in each taxonomy) when its
// pattern matches the subject and text. Only rules that decide a case on
// their own belong here: a boarding pass is travel whatever else it says.
type topicRule struct {
	re    *regexp.Regexp
	not   *regexp.Regexp // when set and matching, the rule does not apply
	names []string       // Tier-1 names across Content, Interest and Purchase Intent
	// rulesOut names Tier-1s the match excludes: a vet's appointment is
	// not the reader's medical care.
	rulesOut []string
}

// rePets marks mail about an animal: a vaccination or an appointment there
// is the pet's, not the reader's health.
var rePets = regexp.MustCompile(`\b(vets?|veterinary|dog walk(er|ing)?|walk the dog|pet sitt(er|ing)|kennels?|cattery|puppy|kitten)\b`)

var topicRules = []topicRule{
	{regexp.MustCompile(`\b(flight|boarding pass|check-in|itinerary|e-ticket|hotel|car hire|airport|departs|stay at)\b`), nil, []string{"travel", "travel and tourism"}, nil},
	{regexp.MustCompile(`\b(statement balance|minimum payment|credit score|tax return|portfolio|pension|premium|savings)\b`), nil, []string{"personal finance", "finance and insurance"}, nil},
	{regexp.MustCompile(`\b(prescription|pharmacy|gp appointment|dentist|dental|vaccination)\b`), rePets, []string{"medical health", "health and medical services"}, nil},
	{rePets, nil, []string{"pets", "pet services"}, []string{"medical health", "health and medical services", "pharmaceuticals, conditions, and symptoms"}},
	{regexp.MustCompile(`\b(job alert|jobs? matching|resume|cv|interview|hiring manager|apply now)\b`), nil, []string{"careers", "education and careers"}, nil},
}

// ruleBoost is added to a rule-asserted Tier-1's similarity score.
const ruleBoost = 0.12

func detectSignals(e core.Email) signals {
	text := strings.ToLower(e.Subject + "\n" + e.Text)
	s := signals{
		transactional: reTransactional.MatchString(text),
		newsletter:    reNewsletter.MatchString(e.Subject) || strings.Contains(strings.ToLower(e.From), "newsletter") || strings.Contains(text, "unsubscribe"),
		topics:        map[string]bool{},
		ruledOut:      map[string]bool{},
	}
	for _, r := range topicRules {
		if r.re.MatchString(text) && (r.not == nil || !r.not.MatchString(text)) {
			for _, n := range r.names {
				s.topics[n] = true
			}
			for _, n := range r.rulesOut {
				s.ruledOut[n] = true
			}
		}
	}
	return s
}

func (s signals) ruleHit(tax *taxonomy.Taxonomy, top *taxonomy.Category) bool {
	return s.topics[strings.ToLower(top.Name)]
}

func (s signals) boost(tax *taxonomy.Taxonomy, top *taxonomy.Category) float64 {
	switch {
	case s.ruleHit(tax, top):
		return ruleBoost
	case s.ruledOut[strings.ToLower(top.Name)]:
		return -ruleBoost
	}
	return 0
}

// RulesOnly is the degraded backend used when no embedder is available (word
// vectors not installed): it assigns only what the keyword rules decide on
// their own, as explicit evidence. Safe for concurrent use.
type RulesOnly struct {
	tops map[taxonomy.Section]map[string]*taxonomy.Category // lower-cased Tier-1 name → category
	kind map[taxonomy.Section]taxonomy.Kind
}

// NewRulesOnly indexes the Tier-1 categories the rules can name.
func NewRulesOnly(tax *taxonomy.Set) *RulesOnly {
	r := &RulesOnly{tops: map[taxonomy.Section]map[string]*taxonomy.Category{}, kind: map[taxonomy.Section]taxonomy.Kind{}}
	for _, s := range classifiedSections {
		t := tax.Audience
		if s == taxonomy.SectionContent {
			t = tax.Content
		}
		r.kind[s] = t.Kind
		r.tops[s] = map[string]*taxonomy.Category{}
		for _, c := range t.InSection(s) {
			if top := t.Top(c.ID); top != nil && top.ID == c.ID {
				r.tops[s][strings.ToLower(c.Name)] = c
			}
		}
	}
	return r
}

// Name is "local".
func (r *RulesOnly) Name() string { return Name }

// Classify applies the keyword rules.
func (r *RulesOnly) Classify(_ context.Context, emails []core.Email) ([]core.Classification, error) {
	var out []core.Classification
	for _, e := range emails {
		sig := detectSignals(e)
		for _, s := range classifiedSections {
			if s == taxonomy.SectionPurchaseIntent && !sig.transactional {
				continue
			}
			for name := range sig.topics {
				if c := r.tops[s][name]; c != nil {
					out = append(out, core.Classification{
						EmailID: e.ID, Taxonomy: r.kind[s], CategoryID: c.ID, Section: s, Confidence: 0.6,
						EvidenceType: core.EvidenceExplicit, Evidence: excerpt(e), Backend: Name, Model: "rules", PromptVersion: PromptVersion,
					})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].EmailID != out[j].EmailID {
			return out[i].EmailID < out[j].EmailID
		}
		return out[i].CategoryID < out[j].CategoryID
	})
	return out, nil
}
