package local

import (
	"regexp"
	"strings"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
)

// signals are what the sender/keyword rules read from one email.
type signals struct {
	transactional bool            // an order, booking, receipt, quote, appointment, renewal
	newsletter    bool            // a list mailing rather than an action
	topics        map[string]bool // Tier-1 names a rule asserts, lower-cased
}

var (
	reTransactional = regexp.MustCompile(`\b(order(ed)?|booking|booked|book (a|your)|reservation|reserved|confirm(ed|ation)|receipt|invoice|tickets?|e-ticket|appointment|deliver(y|ed)|dispatched|shipped|quote[sd]?|test drive|renew(s|al)?|pre-order|prescription|membership|purchase|subscription|checkout|\d+% off|sale)\b`)
	reNewsletter    = regexp.MustCompile(`(?i)\b(newsletter|unsubscribe|weekly|digest|this week in|briefing|today in)\b`)
)

// topicRule asserts Tier-1 categories (by name in each taxonomy) when its
// pattern matches the subject and text. Only rules that decide a case on
// their own belong here: a boarding pass is travel whatever else it says.
type topicRule struct {
	re    *regexp.Regexp
	names []string // Tier-1 names across Content, Interest and Purchase Intent
}

var topicRules = []topicRule{
	{regexp.MustCompile(`\b(flight|boarding pass|check-in|itinerary|e-ticket|hotel|car hire|airport|departs|stay at)\b`), []string{"travel", "travel and tourism"}},
	{regexp.MustCompile(`\b(statement balance|minimum payment|credit score|tax return|portfolio|pension|premium|savings)\b`), []string{"personal finance", "finance and insurance"}},
	{regexp.MustCompile(`\b(prescription|pharmacy|gp appointment|dentist|dental|vaccination)\b`), []string{"medical health", "health and medical services"}},
	{regexp.MustCompile(`\b(job alert|jobs? matching|resume|cv|interview|hiring manager|apply now)\b`), []string{"careers", "education and careers"}},
}

// ruleBoost is added to a rule-asserted Tier-1's similarity score.
const ruleBoost = 0.12

func detectSignals(e core.Email) signals {
	text := strings.ToLower(e.Subject + "\n" + e.Text)
	s := signals{
		transactional: reTransactional.MatchString(text),
		newsletter:    reNewsletter.MatchString(e.Subject) || strings.Contains(strings.ToLower(e.From), "newsletter") || strings.Contains(text, "unsubscribe"),
		topics:        map[string]bool{},
	}
	for _, r := range topicRules {
		if r.re.MatchString(text) {
			for _, n := range r.names {
				s.topics[n] = true
			}
		}
	}
	return s
}

func (s signals) ruleHit(tax *taxonomy.Taxonomy, top *taxonomy.Category) bool {
	return s.topics[strings.ToLower(top.Name)]
}

func (s signals) boost(tax *taxonomy.Taxonomy, top *taxonomy.Category) float64 {
	if s.ruleHit(tax, top) {
		return ruleBoost
	}
	return 0
}
