package agent

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/extract"
)

// Restaurant turns table reservations in mail into reminders and suggests
// booking again at places the user keeps going back to.
type Restaurant struct{}

// Name implements Agent.
func (Restaurant) Name() string { return "restaurant" }

// Level implements Agent.
func (Restaurant) Level() Level { return L1 }

// Actions implements Agent.
func (Restaurant) Actions() []mission.ActionKind {
	return []mission.ActionKind{mission.ActionAddToCalendar, mission.ActionSetReminder, mission.ActionSearchMail, mission.ActionOpenEmail}
}

// Run implements Agent. It makes three tool calls: mail, profile, feedback.
func (r Restaurant) Run(ctx context.Context, env *Env, in Input) ([]mission.Card, error) {
	es, prefs, err := readMail(ctx, env, r.Name(), EmailQuery{
		Text:  "reservation table restaurant booking dinner lunch brunch" + requestText(in),
		Since: in.Now.AddDate(-1, 0, 0), Limit: 300,
	})
	if err != nil {
		return nil, err
	}
	profile, err := env.Profile(ctx)
	if err != nil {
		return nil, err
	}
	conf := profile.Confidence("Dining")
	var cards []mission.Card
	visits := map[string][]sourced{}
	upcomingAt := map[string]bool{}
	for _, s := range bookingsIn(es, extract.KindRestaurant) {
		name := s.b.Name
		if s.b.Start.Before(in.Now.Add(-3 * time.Hour)) {
			visits[strings.ToLower(name)] = append(visits[strings.ToLower(name)], s)
			continue
		}
		upcomingAt[strings.ToLower(name)] = true
		if prefs.Suppress(r.Name(), "reservation") {
			continue
		}
		cards = append(cards, r.reservationCard(s, in.Now))
	}
	keys := make([]string, 0, len(visits))
	for k := range visits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		vs := visits[key]
		if len(vs) < 2 || upcomingAt[key] || prefs.Suppress(r.Name(), "suggestion") {
			continue
		}
		c := r.againCard(vs, in.Now)
		if conf > 0 {
			c.Summary += fmt.Sprintf(" Dining out is among your interests (confidence %.1f).", conf)
		}
		cards = append(cards, c)
	}
	return cards, nil
}

func (r Restaurant) reservationCard(s sourced, now time.Time) mission.Card {
	b := s.b
	c := mission.New(r.Name(), "reservation", "restaurant:"+strings.ToLower(b.Name)+":"+b.Start.Format("2006-01-02T15:04"), now)
	c.Category = "Dining"
	c.EventAt = b.Start
	c.ExpiresAt = b.Start.Add(3 * time.Hour)
	c.Title = fmt.Sprintf("Table at %s, %s", b.Name, fmtWhen(b.Start, b.HasTime))
	var parts []string
	if b.PartySize > 0 {
		parts = append(parts, fmt.Sprintf("Table for %d", b.PartySize))
		c.Details = append(c.Details, mission.Detail{Label: "Party", Value: fmt.Sprint(b.PartySize)})
	}
	c.Details = append(c.Details, mission.Detail{Label: "When", Value: fmtWhen(b.Start, b.HasTime)})
	if b.Location != "" {
		parts = append(parts, b.Location)
		c.Details = append(c.Details, mission.Detail{Label: "Where", Value: b.Location})
	}
	if b.Code != "" {
		parts = append(parts, "confirmation "+b.Code)
		c.Details = append(c.Details, mission.Detail{Label: "Confirmation", Value: b.Code})
	}
	c.Summary = strings.Join(parts, " · ")
	c.Evidence = []mission.Evidence{evidenceOf(s.email, b.Excerpt)}
	end := b.Start.Add(2 * time.Hour)
	p := mission.NewAction("Add to calendar", mission.CalendarEvent{Title: "Dinner at " + b.Name, Start: b.Start, End: end, Location: b.Location})
	c.Primary = &p
	c.Secondary = []mission.Action{
		mission.NewAction("Remind me 2 hours before", mission.Reminder{At: b.Start.Add(-2 * time.Hour), Note: c.Title}),
		openEmail(s.email),
	}
	switch until := b.Start.Sub(now); {
	case until < 24*time.Hour:
		c.Urgency = mission.UrgencyHigh
	case until < 7*24*time.Hour:
		c.Urgency = mission.UrgencyNormal
	default:
		c.Urgency = mission.UrgencyLow
	}
	return c
}

func (r Restaurant) againCard(vs []sourced, now time.Time) mission.Card {
	name := vs[0].b.Name
	c := mission.New(r.Name(), "suggestion", "again:"+strings.ToLower(name), now)
	c.Category = "Dining"
	c.Title = fmt.Sprintf("Book %s again?", name)
	var dates []string
	for _, v := range vs {
		dates = append(dates, fmtDay(v.b.Start))
		c.Evidence = append(c.Evidence, evidenceOf(v.email, v.b.Excerpt))
	}
	c.Summary = fmt.Sprintf("You have been to %s %d times (%s) and have nothing booked there.", name, len(vs), strings.Join(dates, ", "))
	c.Urgency = mission.UrgencyLow
	c.ExpiresAt = now.AddDate(0, 0, 14)
	p := mission.NewAction("Find past bookings", mission.MailSearch{Query: name})
	c.Primary = &p
	c.Secondary = []mission.Action{openEmail(vs[len(vs)-1].email)}
	return c
}

// Events turns tickets in mail into upcoming-event cards and surfaces
// announced events that match the user's interests. With a Lister it also
// suggests listed events, labelled with the service they come from; without
// one its cards come from the user's mail only.
type Events struct {
	Lister EventLister // optional
}

// Name implements Agent.
func (Events) Name() string { return "events" }

// Level implements Agent: L1, or L2 with a lister (its calls need the
// larger tool budget).
func (ev Events) Level() Level {
	if ev.Lister != nil {
		return L2
	}
	return L1
}

// Actions implements Agent.
func (Events) Actions() []mission.ActionKind {
	return []mission.ActionKind{mission.ActionAddToCalendar, mission.ActionSetReminder, mission.ActionOpenEmail}
}

var onSaleRe = regexp.MustCompile(`(?i)\b(on sale (?:now|from|on)|pre-?sale|just announced|tickets (?:are )?available|get your tickets|announc(?:ed|ing))\b`)

// Run implements Agent. Three tool calls: mail, profile, feedback; a fourth
// for the lister, if any.
func (ev Events) Run(ctx context.Context, env *Env, in Input) ([]mission.Card, error) {
	es, prefs, err := readMail(ctx, env, ev.Name(), EmailQuery{
		Text:  "tickets event concert venue show festival doors gig theatre match" + requestText(in),
		Since: in.Now.AddDate(-1, 0, 0), Limit: 300,
	})
	if err != nil {
		return nil, err
	}
	profile, err := env.Profile(ctx)
	if err != nil {
		return nil, err
	}
	var cards []mission.Card
	held := map[string]bool{}
	var announced []sourced
	for _, s := range bookingsIn(es, extract.KindEvent) {
		if s.b.Start.Before(in.Now.Add(-6 * time.Hour)) {
			continue
		}
		if isAnnouncement(s) {
			announced = append(announced, s)
			continue
		}
		held[strings.ToLower(s.b.Name)] = true
		if !prefs.Suppress(ev.Name(), "event") {
			cards = append(cards, ev.ticketCard(s, in.Now))
		}
	}
	for _, s := range announced {
		if held[strings.ToLower(s.b.Name)] || prefs.Suppress(ev.Name(), "suggestion") || s.b.Location == "" {
			continue
		}
		best := 0.0
		for _, cat := range s.email.Categories {
			best = max(best, profile.Confidence(cat))
		}
		if best < 0.4 {
			continue
		}
		cards = append(cards, ev.announcedCard(s, in.Now))
		held[strings.ToLower(s.b.Name)] = true
	}
	if ev.Lister != nil && !prefs.Suppress(ev.Name(), "listing") {
		cards = append(cards, ev.listed(ctx, env, bookingsIn(es, extract.KindEvent), profile, held, in.Now)...)
	}
	return cards, nil
}

// isAnnouncement tells an event announced for sale from a ticket the user holds.
func isAnnouncement(s sourced) bool {
	msg := s.email.Message()
	return onSaleRe.MatchString(msg.Subject+" "+msg.Body) && len(extract.Codes(msg.Subject+"\n"+msg.Body)) == 0
}

func (ev Events) ticketCard(s sourced, now time.Time) mission.Card {
	b := s.b
	c := mission.New(ev.Name(), "event", "event:"+strings.ToLower(b.Name)+":"+b.Start.Format("2006-01-02"), now)
	c.Category = "Events"
	c.EventAt = b.Start
	c.ExpiresAt = dayOf(b.Start).AddDate(0, 0, 1)
	c.Title = fmt.Sprintf("%s, %s", b.Name, fmtWhen(b.Start, b.HasTime))
	c.Details = []mission.Detail{{Label: "When", Value: fmtWhen(b.Start, b.HasTime)}}
	parts := []string{fmtWhen(b.Start, b.HasTime)}
	if b.Location != "" {
		c.Details = append(c.Details, mission.Detail{Label: "Venue", Value: b.Location})
		parts = append(parts, b.Location)
	}
	if b.Code != "" {
		c.Details = append(c.Details, mission.Detail{Label: "Ticket", Value: b.Code})
		parts = append(parts, "ticket "+b.Code)
	}
	c.Summary = "You have tickets: " + strings.Join(parts, " · ")
	c.Evidence = []mission.Evidence{evidenceOf(s.email, b.Excerpt)}
	p := mission.NewAction("Add to calendar", mission.CalendarEvent{Title: b.Name, Start: b.Start, AllDay: !b.HasTime, Location: b.Location})
	c.Primary = &p
	c.Secondary = []mission.Action{
		mission.NewAction("Remind me the day before", mission.Reminder{At: b.Start.Add(-24 * time.Hour), Note: b.Name}),
		openEmail(s.email),
	}
	if b.Start.Sub(now) < 72*time.Hour {
		c.Urgency = mission.UrgencyHigh
	} else {
		c.Urgency = mission.UrgencyNormal
	}
	return c
}

func (ev Events) announcedCard(s sourced, now time.Time) mission.Card {
	b := s.b
	c := mission.New(ev.Name(), "suggestion", "announced:"+strings.ToLower(b.Name)+":"+b.Start.Format("2006-01-02"), now)
	c.Category = "Events"
	c.EventAt = b.Start
	c.ExpiresAt = b.Start
	c.Title = fmt.Sprintf("Coming up: %s", b.Name)
	c.Summary = fmt.Sprintf("%s at %s, announced in a mail from %s.", fmtWhen(b.Start, b.HasTime), b.Location, extract.SenderName(s.email.From))
	c.Details = []mission.Detail{{Label: "When", Value: fmtWhen(b.Start, b.HasTime)}, {Label: "Venue", Value: b.Location}}
	c.Evidence = []mission.Evidence{evidenceOf(s.email, b.Excerpt)}
	p := openEmail(s.email)
	c.Primary = &p
	c.Urgency = mission.UrgencyLow
	return c
}
