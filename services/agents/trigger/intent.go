package trigger

import (
	"errors"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ownyou/home/services/agents/agent"
	"github.com/ownyou/home/services/agents/extract"
)

// ErrNoIntent means a request matched no agent.
var ErrNoIntent = errors.New("could not tell what the request is about")

var intentWords = map[string][]string{
	"travel":     {"flight", "flights", "fly", "trip", "trips", "travel", "hotel", "hotels", "train", "itinerary", "airport", "holiday", "vacation", "booking", "bookings", "car rental", "rental car", "boarding", "layover", "stay"},
	"shopping":   {"buy", "price", "prices", "order", "orders", "deal", "deals", "cheaper", "purchase", "purchases", "delivery", "package", "shop", "shopping", "receipt", "cart", "wishlist", "discount"},
	"restaurant": {"restaurant", "restaurants", "dinner", "lunch", "brunch", "table", "eat", "eating", "reservation", "dine", "dining", "food"},
	"events":     {"concert", "concerts", "ticket", "tickets", "show", "shows", "event", "events", "gig", "festival", "theatre", "theater", "match", "game", "exhibition"},
	"content":    {"read", "reading", "article", "articles", "newsletter", "newsletters", "news", "digest", "blog", "learn"},
	"diagnostic": {"source", "sources", "sync", "import", "imports", "mailbox", "profile", "coverage", "connect", "diagnostic", "status", "health", "missing emails"},
}

var stopwords = map[string]bool{
	"a": true, "an": true, "the": true, "to": true, "for": true, "of": true, "in": true, "on": true, "at": true, "my": true,
	"me": true, "i": true, "is": true, "are": true, "what": true, "whats": true, "what's": true, "when": true, "where": true,
	"do": true, "does": true, "did": true, "have": true, "has": true, "any": true, "and": true, "or": true, "with": true,
	"from": true, "please": true, "can": true, "you": true, "show": true, "find": true, "next": true, "this": true, "it": true,
	"be": true, "about": true, "there": true, "that": true, "there's": true, "i'm": true, "we": true, "our": true, "get": true,
}

var wordRe = regexp.MustCompile(`[\p{L}\p{N}'’-]+`)

// Route picks the agent for a free-text request and extracts its
// entities (dates relative to now, places, amounts, codes, content words).
// A request with a flight number or airport goes to travel; otherwise the
// agent whose vocabulary the request uses most wins. No match is
// ErrNoIntent, never a guess.
func Route(text string, now time.Time) (string, agent.Entities, error) {
	var ents agent.Entities
	for _, d := range extract.Dates(text, now) {
		ents.Dates = append(ents.Dates, d.Time)
	}
	seenPlace := map[string]bool{}
	for _, p := range extract.Places(text) {
		if !seenPlace[p.City] {
			seenPlace[p.City] = true
			ents.Places = append(ents.Places, p.City)
		}
	}
	for _, m := range extract.Money(text) {
		ents.Amounts = append(ents.Amounts, m.String())
	}
	for _, c := range extract.Codes(text) {
		ents.Codes = append(ents.Codes, c.Value)
	}
	lower := strings.ToLower(text)
	words := wordRe.FindAllString(lower, -1)
	for _, w := range words {
		if !stopwords[w] && len(w) > 1 {
			ents.Terms = append(ents.Terms, w)
		}
	}
	score := map[string]float64{}
	for name, ws := range intentWords {
		for _, w := range ws {
			if strings.Contains(w, " ") {
				if strings.Contains(lower, w) {
					score[name] += 2
				}
				continue
			}
			for _, x := range words {
				if x == w {
					score[name]++
				}
			}
		}
	}
	if len(extract.FlightNumbers(text)) > 0 || len(extract.Airports(text)) > 0 {
		score["travel"] += 3
	}
	if len(ents.Places) > 0 {
		score["travel"] += 0.5 // a place alone leans towards travel, but a "dinner in Lisbon" stays dining
	}
	if len(ents.Amounts) > 0 {
		score["shopping"] += 0.5
	}
	names := make([]string, 0, len(score))
	for n := range score {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if score[names[i]] != score[names[j]] {
			return score[names[i]] > score[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) == 0 || score[names[0]] < 1 {
		return "", ents, ErrNoIntent
	}
	return names[0], ents, nil
}
