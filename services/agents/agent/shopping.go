package agent

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/extract"
)

// Shopping reads order confirmations, receipts and price mentions: recent
// orders become order cards; products the user looked at (cart, wishlist,
// price alerts) become "watching / buy now / wait" cards with the prices
// found in mail. With a PriceProvider it also compares against a real
// current price; without one it never shows a price the mail did not state.
type Shopping struct {
	Prices PriceProvider // optional
}

// Name implements Agent.
func (Shopping) Name() string { return "shopping" }

// Level implements Agent.
func (Shopping) Level() Level { return L2 }

// Actions implements Agent.
func (Shopping) Actions() []mission.ActionKind {
	return []mission.ActionKind{mission.ActionWatchPrice, mission.ActionOpenEmail, mission.ActionSearchMail}
}

var (
	intentRe     = regexp.MustCompile(`(?i)\b(left in your (?:cart|basket)|still in your (?:cart|basket)|your wish ?list|price (?:drop|alert|cut)|back in stock|now only|just dropped|saved for later|items? you viewed|you looked at)\b`)
	nowPriceRe   = regexp.MustCompile(`(?im)^[ \t•*-]*(.{3,100}?)\s+(?:is\s+)?(?:now|now only|dropped to|down to)\s*:?\s*(\S{0,4}\s?\d[\d.,\x{00A0} ]*(?:\s?[A-Z]{3}|€|£)?)(?:\s*\((?:was|previously)\s+([^)]+)\))?`)
	productKeyRe = regexp.MustCompile(`[^a-z0-9]+`)
)

type priceObs struct {
	name   string
	price  extract.Amount
	at     time.Time
	email  Email
	bought bool
	line   string
}

func productKey(name string) string {
	w := strings.Fields(strings.Trim(productKeyRe.ReplaceAllString(strings.ToLower(name), " "), " "))
	if len(w) > 6 {
		w = w[:6]
	}
	return strings.Join(w, " ")
}

// Run implements Agent: mail, feedback and at most one price lookup per
// watched product within the level's budget.
func (s Shopping) Run(ctx context.Context, env *Env, in Input) ([]mission.Card, error) {
	es, prefs, err := readMail(ctx, env, s.Name(), EmailQuery{
		Text:  "order receipt purchase invoice cart basket wishlist price drop back in stock" + requestText(in),
		Since: in.Now.AddDate(0, -4, 0), Limit: 400,
	})
	if err != nil {
		return nil, err
	}
	sortByDate(es)
	var cards []mission.Card
	obs := map[string][]priceObs{}
	var order []string
	note := func(o priceObs) {
		k := productKey(o.name)
		if k == "" {
			return
		}
		if _, ok := obs[k]; !ok {
			order = append(order, k)
		}
		obs[k] = append(obs[k], o)
	}
	for _, e := range es {
		msg := e.Message()
		text := msg.Subject + "\n" + msg.Body
		if intentRe.MatchString(text) {
			for _, o := range intentPrices(e) {
				note(o)
			}
			continue
		}
		for _, b := range extract.Bookings(msg) {
			if b.Kind != extract.KindOrder || b.Cancelled {
				continue
			}
			for _, it := range b.Items {
				unit := it.Price
				if it.Qty > 1 {
					unit.Cents /= int64(it.Qty)
				}
				note(priceObs{name: it.Name, price: unit, at: e.Date, email: e, bought: true, line: it.Name + " " + it.Price.Text})
			}
			if in.Now.Sub(e.Date) <= 14*24*time.Hour && !prefs.Suppress(s.Name(), "order") {
				cards = append(cards, s.orderCard(e, b, in.Now))
			}
		}
	}
	for _, k := range order {
		c, ok, err := s.watchCard(ctx, env, obs[k], in.Now)
		if err != nil {
			return cards, err
		}
		if ok && !prefs.Suppress(s.Name(), "watch") {
			cards = append(cards, c)
		}
	}
	return cards, nil
}

// intentPrices reads "X is now $Y (was $Z)" lines, falling back to the
// mail's priced lines.
func intentPrices(e Email) []priceObs {
	var out []priceObs
	for _, m := range nowPriceRe.FindAllStringSubmatch(e.Body, -1) {
		ms := extract.Money(m[2])
		if len(ms) == 0 {
			continue
		}
		name := strings.TrimSpace(m[1])
		if was := extract.Money(m[3]); len(was) > 0 {
			out = append(out, priceObs{name: name, price: was[0], at: e.Date.Add(-time.Second), email: e, line: strings.TrimSpace(m[0])})
		}
		out = append(out, priceObs{name: name, price: ms[0], at: e.Date, email: e, line: strings.TrimSpace(m[0])})
	}
	if len(out) > 0 {
		return out
	}
	for _, it := range extract.LineItems(e.Body) {
		out = append(out, priceObs{name: it.Name, price: it.Price, at: e.Date, email: e, line: it.Name + " " + it.Price.Text})
	}
	return out
}

func (s Shopping) orderCard(e Email, b extract.Booking, now time.Time) mission.Card {
	key := "order:" + firstNonEmpty(b.Code, e.ID)
	c := mission.New(s.Name(), "order", key, now)
	c.Category = "Shopping"
	merchant := firstNonEmpty(b.Provider, "your shop")
	first := "your order"
	if len(b.Items) > 0 {
		first = b.Items[0].Name
		if len(b.Items) > 1 {
			first += fmt.Sprintf(" and %d more", len(b.Items)-1)
		}
	}
	c.Title = fmt.Sprintf("%s order: %s", capitalizeLower(merchant), first)
	var lines []string
	for _, it := range b.Items {
		v := it.Price.Text
		if it.Qty > 1 {
			v = fmt.Sprintf("%d × %s", it.Qty, v)
		}
		c.Details = append(c.Details, mission.Detail{Label: it.Name, Value: v})
		lines = append(lines, it.Name+" — "+v)
	}
	if b.Total != nil {
		c.Details = append(c.Details, mission.Detail{Label: "Total", Value: b.Total.Text})
		lines = append(lines, "Total "+b.Total.Text)
	}
	if b.Code != "" {
		c.Details = append(c.Details, mission.Detail{Label: "Order", Value: b.Code})
	}
	c.Summary = strings.Join(lines, "\n")
	c.Evidence = []mission.Evidence{evidenceOf(e, firstNonEmpty(b.Excerpt, e.Subject))}
	p := openEmail(e)
	c.Primary = &p
	for _, it := range b.Items {
		if len(c.Secondary) >= 3 {
			break
		}
		c.Secondary = append(c.Secondary, mission.NewAction("Watch the price of "+it.Name, mission.PriceWatch{
			Product: it.Name, Currency: it.Price.Currency, LastCents: it.Price.Cents, LowestCents: it.Price.Cents, EvidenceMail: e.ID,
		}))
	}
	c.ExpiresAt = e.Date.AddDate(0, 0, 30)
	c.Urgency = mission.UrgencyLow
	return c
}

// watchCard decides watching / buy now / wait for a product from its price
// history in mail (and the provider's current price when there is one).
// Products already bought after the last look get no card.
func (s Shopping) watchCard(ctx context.Context, env *Env, os []priceObs, now time.Time) (mission.Card, bool, error) {
	sort.SliceStable(os, func(i, j int) bool { return os[i].at.Before(os[j].at) })
	last := os[len(os)-1]
	if last.bought {
		return mission.Card{}, false, nil
	}
	var seen []priceObs
	for _, o := range os {
		if !o.bought && o.price.Currency == last.price.Currency {
			seen = append(seen, o)
		}
	}
	if len(seen) == 0 || now.Sub(last.at) > 60*24*time.Hour {
		return mission.Card{}, false, nil
	}
	lowest := seen[0]
	for _, o := range seen {
		if o.price.Cents < lowest.price.Cents {
			lowest = o
		}
	}
	c := mission.New(s.Name(), "watch", "watch:"+productKey(last.name), now)
	c.Category = "Shopping"
	name := last.name
	var verdict string
	var prior []priceObs
	for _, o := range seen[:len(seen)-1] {
		prior = append(prior, o)
	}
	switch {
	case len(prior) == 0:
		verdict = "Watching"
		c.Summary = fmt.Sprintf("%s was %s on %s. No other price for it in your mail yet.", name, last.price.Text, fmtDay(last.at))
		c.Urgency = mission.UrgencyLow
	case last.price.Cents <= lowest.price.Cents && last.price.Cents < prior[0].price.Cents:
		verdict = "Buy now"
		c.Summary = fmt.Sprintf("%s is %s, the lowest price in your mail (it was %s on %s).", name, last.price.Text, prior[0].price.Text, fmtDay(prior[0].at))
		c.Urgency = mission.UrgencyHigh
	case last.price.Cents > lowest.price.Cents:
		verdict = "Wait"
		c.Summary = fmt.Sprintf("%s is %s now but was %s on %s; it may drop again.", name, last.price.Text, lowest.price.Text, fmtDay(lowest.at))
		c.Urgency = mission.UrgencyLow
	default:
		verdict = "Watching"
		c.Summary = fmt.Sprintf("%s is still %s (%s).", name, last.price.Text, fmtDay(last.at))
		c.Urgency = mission.UrgencyLow
	}
	c.Title = fmt.Sprintf("%s: %s at %s", verdict, name, last.price.Text)
	for _, o := range seen {
		c.Details = append(c.Details, mission.Detail{Label: fmtDay(o.at), Value: o.price.Text})
		c.Evidence = append(c.Evidence, evidenceOf(o.email, extract.Excerpt(o.line, 200)))
	}
	if s.Prices != nil && env.tool() == nil {
		p, seller, ok, err := s.Prices.CurrentPrice(ctx, name)
		if err != nil {
			return mission.Card{}, false, fmt.Errorf("price lookup %q: %w", name, err)
		}
		if ok {
			c.Details = append(c.Details, mission.Detail{Label: "Now at " + seller, Value: p.String()})
		}
	}
	c.Evidence = dedupeEvidence(c.Evidence)
	p := mission.NewAction("Watch this price", mission.PriceWatch{Product: name, Currency: last.price.Currency,
		LastCents: last.price.Cents, LowestCents: lowest.price.Cents, EvidenceMail: last.email.ID})
	c.Primary = &p
	c.Secondary = []mission.Action{
		openEmail(last.email),
		mission.NewAction("Find mentions in mail", mission.MailSearch{Query: name}),
	}
	c.ExpiresAt = last.at.AddDate(0, 0, 30)
	return c, true, nil
}

// capitalizeLower capitalizes a name written all in lower case (one taken
// from a mail domain, "amazon"), leaving names with their own casing
// ("eBay", "ASOS") alone.
func capitalizeLower(name string) string {
	if name == "" || name != strings.ToLower(name) {
		return name
	}
	r, n := utf8.DecodeRuneInString(name)
	return string(unicode.ToUpper(r)) + name[n:]
}
