package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/extract"
)

// eventInterestWords pick the profile interests an event lister is asked about.
var eventInterestWords = []string{"event", "music", "arts & entertainment", "sports", "movies", "television", "theater", "theatre", "comedy"}

// listingWindow is how far ahead listed events are looked for.
const listingWindow = 60 * 24 * time.Hour

// maxListings bounds the listing cards of one run.
const maxListings = 3

// listed asks the event lister (one tool call) for upcoming events matching
// the user's event interests in the city of their latest ticket, and makes
// a card of each, labelled with the service and showing only its data. The
// ticket mail is the card's evidence: it is why the city and the interest
// are the user's. No ticket with a known city or no event interest asks
// nothing; an event already held or announced in mail, or without a date or
// venue, is skipped. A failing lister is noted in the run, not fatal.
func (ev Events) listed(ctx context.Context, env *Env, tickets []sourced, profile Profile, held map[string]bool, now time.Time) []mission.Card {
	var why *sourced
	var city string
	for i := len(tickets) - 1; i >= 0 && why == nil; i-- {
		if isAnnouncement(tickets[i]) {
			continue
		}
		if ps := extract.Places(tickets[i].b.Location); len(ps) > 0 {
			why, city = &tickets[i], ps[0].City
		}
	}
	var interests []string
	for _, in := range profile.Interests {
		name := strings.ToLower(in.Name)
		for _, w := range eventInterestWords {
			if in.Confidence >= 0.4 && strings.Contains(name, w) {
				interests = append(interests, in.Name)
				break
			}
		}
	}
	if why == nil || len(interests) == 0 || env.tool() != nil {
		return nil
	}
	found, err := ev.Lister.UpcomingEvents(ctx, EventQuery{Interests: interests, Place: city, From: now, To: now.Add(listingWindow), Limit: 10})
	if err != nil {
		env.note([]string{fmt.Sprintf("event listings from %s unavailable: %v", ev.Lister.Name(), err)})
		return nil
	}
	var cards []mission.Card
	for _, e := range found {
		if len(cards) == maxListings {
			break
		}
		name := strings.TrimSpace(e.Name)
		if name == "" || e.ID == "" || e.Start.IsZero() || strings.TrimSpace(e.Venue) == "" || !e.Start.After(now) || held[strings.ToLower(name)] {
			continue
		}
		cards = append(cards, ev.listingCard(e, *why, city, now))
	}
	return cards
}

func (ev Events) listingCard(e ListedEvent, why sourced, city string, now time.Time) mission.Card {
	src := ev.Lister.Name()
	c := mission.New(ev.Name(), "listing", "listed:"+strings.ToLower(src)+":"+e.ID, now)
	c.Category = "Events"
	c.EventAt = e.Start
	c.ExpiresAt = e.Start
	when := fmtWhen(e.Start, e.HasTime)
	c.Title = fmt.Sprintf("Listed by %s: %s", src, e.Name)
	c.Summary = fmt.Sprintf("%s at %s, listed by %s. Suggested from your tickets for %s in %s.", when, e.Venue, src, why.b.Name, city)
	c.Details = []mission.Detail{{Label: "Listed by", Value: src}, {Label: "When", Value: when}, {Label: "Venue", Value: e.Venue}}
	if e.URL != "" {
		c.Details = append(c.Details, mission.Detail{Label: "Listing", Value: e.URL})
	}
	c.Evidence = []mission.Evidence{evidenceOf(why.email, why.b.Excerpt)}
	p := mission.NewAction("Add to calendar", mission.CalendarEvent{Title: e.Name, Start: e.Start, AllDay: !e.HasTime, Location: e.Venue})
	c.Primary = &p
	c.Secondary = []mission.Action{openEmail(why.email)}
	c.Urgency = mission.UrgencyLow
	return c
}
