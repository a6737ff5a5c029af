package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/extract"
)

// Travel turns flight, train, hotel and car bookings found in mail into one
// card per trip with dates, places, confirmation numbers and what is
// missing (a night without a hotel, no way back).
type Travel struct {
	Flights FlightStatusProvider // optional; without it no status is shown
}

// Name implements Agent.
func (Travel) Name() string { return "travel" }

// Level implements Agent.
func (Travel) Level() Level { return L3 }

// Actions implements Agent.
func (Travel) Actions() []mission.ActionKind {
	return []mission.ActionKind{mission.ActionAddToCalendar, mission.ActionPlanGap, mission.ActionOpenEmail}
}

type sourced struct {
	b     extract.Booking
	email Email
}

func (s sourced) end() time.Time {
	if !s.b.End.IsZero() {
		return s.b.End
	}
	return s.b.Start
}

func (s sourced) transport() bool {
	return s.b.Kind == extract.KindFlight || s.b.Kind == extract.KindTrain
}

// bookingsIn extracts the live bookings of the given kinds: a later
// cancellation mail with the same confirmation code removes a booking.
func bookingsIn(es []Email, kinds ...extract.Kind) []sourced {
	sortByDate(es)
	var out []sourced
	cancelled := map[string]bool{}
	for _, e := range es {
		for _, b := range extract.Bookings(e.Message()) {
			ok := false
			for _, k := range kinds {
				ok = ok || b.Kind == k
			}
			if !ok {
				continue
			}
			if b.Cancelled {
				if b.Code != "" {
					cancelled[b.Code] = true
				}
				cancelled[string(b.Kind)+"|"+b.Name+"|"+dayOf(b.Start).String()] = true
				continue
			}
			out = append(out, sourced{b: b, email: e})
		}
	}
	live := out[:0]
	for _, s := range out {
		if (s.b.Code != "" && cancelled[s.b.Code]) || cancelled[string(s.b.Kind)+"|"+s.b.Name+"|"+dayOf(s.b.Start).String()] {
			continue
		}
		live = append(live, s)
	}
	// the same booking confirmed twice (confirmation + reminder) counts once
	seen := map[string]bool{}
	uniq := live[:0]
	for _, s := range live {
		k := string(s.b.Kind) + "|" + s.b.Number + "|" + s.b.Name + "|" + s.b.Start.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		uniq = append(uniq, s)
	}
	sort.SliceStable(uniq, func(i, j int) bool { return sortTime(uniq[i].b).Before(sortTime(uniq[j].b)) })
	return uniq
}

// Run implements Agent.
func (t Travel) Run(ctx context.Context, env *Env, in Input) ([]mission.Card, error) {
	es, prefs, err := readMail(ctx, env, t.Name(), EmailQuery{
		Text:  "flight itinerary boarding booking reference hotel check-in reservation train journey car rental pick-up" + requestText(in),
		Since: in.Now.AddDate(-1, 0, 0), Limit: 500,
	})
	if err != nil {
		return nil, err
	}
	if prefs.Suppress(t.Name(), "trip") {
		return nil, nil
	}
	all := bookingsIn(es, extract.KindFlight, extract.KindTrain, extract.KindHotel, extract.KindCar)
	var upcoming []sourced
	for _, s := range all {
		if !s.end().Before(in.Now.Add(-24 * time.Hour)) {
			upcoming = append(upcoming, s)
		}
	}
	var cards []mission.Card
	for _, trip := range groupTrips(upcoming) {
		c, ok := t.tripCard(trip, in.Now)
		if !ok {
			continue
		}
		if err := t.addStatus(ctx, env, &c, trip, in.Now); err != nil {
			return nil, err
		}
		if in.Request != nil && len(in.Request.Entities.Places) > 0 && !mentionsAny(c, in.Request.Entities.Places) {
			continue
		}
		cards = append(cards, c)
	}
	return cards, nil
}

func mentionsAny(c mission.Card, places []string) bool {
	hay := strings.ToLower(c.Title + " " + c.Summary)
	for _, d := range c.Details {
		hay += " " + strings.ToLower(d.Value)
	}
	for _, p := range places {
		if strings.Contains(hay, strings.ToLower(p)) {
			return true
		}
	}
	return false
}

// groupTrips clusters bookings that follow each other within two days.
func groupTrips(bs []sourced) [][]sourced {
	var trips [][]sourced
	var end time.Time
	for _, s := range bs {
		if len(trips) == 0 || s.b.Start.After(end.Add(48*time.Hour)) {
			trips = append(trips, []sourced{s})
			end = s.end()
			continue
		}
		trips[len(trips)-1] = append(trips[len(trips)-1], s)
		if s.end().After(end) {
			end = s.end()
		}
	}
	return trips
}

func placeName(p extract.Place) string {
	if p.IATA != "" {
		return p.City + " (" + p.IATA + ")"
	}
	return p.City
}

func (t Travel) tripCard(trip []sourced, now time.Time) (mission.Card, bool) {
	var legs, hotels []sourced
	for _, s := range trip {
		switch {
		case s.transport():
			legs = append(legs, s)
		case s.b.Kind == extract.KindHotel:
			hotels = append(hotels, s)
		}
	}
	home, dest := "", ""
	if len(legs) > 0 {
		home, dest = legs[0].b.From.City, legs[0].b.To.City
	} else if len(hotels) > 0 {
		dest = hotels[0].b.To.City
		if dest == "" {
			dest = hotels[0].b.Location
		}
	} else if trip[0].b.From.City != "" {
		dest = trip[0].b.From.City
	}
	if dest == "" {
		return mission.Card{}, false
	}
	start := trip[0].b.Start
	end := start
	for _, s := range trip {
		if s.end().After(end) {
			end = s.end()
		}
	}
	key := "trip:" + strings.ToLower(dest) + ":" + start.Format("2006-01-02")
	c := mission.New(t.Name(), "trip", key, now)
	c.Category = "Travel"
	c.EventAt = start
	c.ExpiresAt = dayOf(end).AddDate(0, 0, 2)
	c.Title = fmt.Sprintf("Trip to %s, %s", dest, dateRange(start, end))

	for _, s := range trip {
		b := s.b
		var label, val string
		switch b.Kind {
		case extract.KindFlight, extract.KindTrain:
			label = strings.Title(string(b.Kind)) //nolint:staticcheck // ASCII kind names
			if b.Number != "" {
				label += " " + b.Number
			}
			val = fmt.Sprintf("%s → %s, %s", placeName(b.From), placeName(b.To), fmtWhen(b.Start, b.HasTime))
			if !b.End.IsZero() {
				val += ", arrives " + b.End.Format("15:04")
			}
		case extract.KindHotel:
			label = "Hotel"
			val = fmt.Sprintf("%s, %s → %s", firstNonEmpty(b.Name, b.Location), fmtDay(b.Start), fmtDay(b.End))
		case extract.KindCar:
			label = "Car"
			val = fmt.Sprintf("%s, pick-up %s %s", firstNonEmpty(b.Provider, "rental"), placeName(b.From), fmtWhen(b.Start, b.HasTime))
		}
		if b.Code != "" {
			val += " (ref " + b.Code + ")"
		}
		c.Details = append(c.Details, mission.Detail{Label: label, Value: val})
		c.Evidence = append(c.Evidence, evidenceOf(s.email, b.Excerpt))
	}
	gaps := tripGaps(legs, hotels, home, dest)
	for _, g := range gaps {
		var label string
		switch g.Need {
		case "hotel":
			label = "No hotel for the night of " + fmtDay(g.From) + " in " + g.City
		case "return":
			label = "No journey back from " + g.City + " booked"
		}
		c.Details = append(c.Details, mission.Detail{Label: "Missing", Value: label})
		c.Secondary = append(c.Secondary, mission.NewAction(label, g))
	}
	c.Summary = tripSummary(trip, gaps)
	c.Evidence = dedupeEvidence(c.Evidence)
	p := mission.NewAction("Add trip to calendar", mission.CalendarEvent{Title: "Trip to " + dest, Start: dayOf(start), End: dayOf(end).AddDate(0, 0, 1), AllDay: true, Location: dest})
	c.Primary = &p
	for _, e := range trip {
		if len(c.Secondary) >= 6 {
			break
		}
		c.Secondary = appendUniqueOpen(c.Secondary, e.email)
	}
	until := start.Sub(now)
	switch {
	case until < 48*time.Hour:
		c.Urgency = mission.UrgencyCritical
	case until < 7*24*time.Hour || (len(gaps) > 0 && until < 14*24*time.Hour):
		c.Urgency = mission.UrgencyHigh
	default:
		c.Urgency = mission.UrgencyNormal
	}
	return c, true
}

// appendUniqueOpen adds an action opening e unless acts has one; a trip's
// card opens each of its booking mails, so each is named by its subject.
// tripSummary says in one line what the trip's details list: the bookings
// found by kind, and how many gaps are left.
func tripSummary(trip []sourced, gaps []mission.TripGap) string {
	var kinds []string
	counts := map[extract.Kind]int{}
	for _, s := range trip {
		if counts[s.b.Kind] == 0 {
			kinds = append(kinds, string(s.b.Kind))
		}
		counts[s.b.Kind]++
	}
	var parts []string
	for _, k := range kinds {
		n := counts[extract.Kind(k)]
		word := k
		if n > 1 {
			word += "s"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, word))
	}
	switch len(gaps) {
	case 0:
		parts = append(parts, "nothing missing")
	case 1:
		parts = append(parts, "1 thing missing")
	default:
		parts = append(parts, fmt.Sprintf("%d things missing", len(gaps)))
	}
	return "Booked: " + strings.Join(parts, " · ")
}

func appendUniqueOpen(acts []mission.Action, e Email) []mission.Action {
	for _, a := range acts {
		if r, ok := a.Payload.(mission.EmailRef); ok && r.EmailID == e.ID {
			return acts
		}
	}
	if e.Subject == "" {
		return append(acts, openEmail(e))
	}
	return append(acts, mission.NewAction("Open “"+extract.Excerpt(e.Subject, 48)+"”", mission.EmailRef{EmailID: e.ID}))
}

// tripGaps finds nights between arrival and the way back without a hotel,
// and a missing way back.
func tripGaps(legs, hotels []sourced, home, dest string) []mission.TripGap {
	if len(legs) == 0 {
		return nil
	}
	arrive := legs[0].b.Start
	if !legs[0].b.End.IsZero() {
		arrive = legs[0].b.End
	}
	var back *sourced
	for i := range legs[1:] {
		l := legs[i+1]
		if l.b.To.City == home || l.b.From.City == dest && home == "" {
			back = &l
			break
		}
	}
	var gaps []mission.TripGap
	leave := time.Time{}
	if back != nil {
		leave = dayOf(back.b.Start)
	} else {
		gaps = append(gaps, mission.TripGap{Need: "return", City: dest, From: dayOf(arrive)})
		for _, h := range hotels {
			if !h.b.End.IsZero() && h.b.End.After(leave) {
				leave = dayOf(h.b.End)
			}
		}
		if leave.IsZero() {
			leave = dayOf(arrive).AddDate(0, 0, 1) // at least the arrival night
		}
	}
	for d := dayOf(arrive); d.Before(leave); d = d.AddDate(0, 0, 1) {
		covered := false
		for _, h := range hotels {
			if !dayOf(h.b.Start).After(d) && (h.b.End.IsZero() || dayOf(h.b.End).After(d)) {
				covered = true
			}
		}
		if !covered {
			gaps = append(gaps, mission.TripGap{Need: "hotel", City: dest, From: d, To: d.AddDate(0, 0, 1)})
		}
	}
	return gaps
}

func dateRange(a, b time.Time) string {
	if dayOf(a).Equal(dayOf(b)) {
		return a.Format("2 Jan 2006")
	}
	if a.Year() == b.Year() && a.Month() == b.Month() {
		return fmt.Sprintf("%d–%s", a.Day(), b.Format("2 Jan 2006"))
	}
	return a.Format("2 Jan") + " – " + b.Format("2 Jan 2006")
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// sortTime places a booking without a stated time of day (a hotel check-in
// date) in the afternoon, after the morning flight that gets there.
func sortTime(b extract.Booking) time.Time {
	if b.HasTime {
		return b.Start
	}
	return dayOf(b.Start).Add(15 * time.Hour)
}

// addStatus asks the flight provider, if any, about legs leaving within 48
// hours; each question is one tool call and stops quietly at the budget.
func (t Travel) addStatus(ctx context.Context, env *Env, c *mission.Card, trip []sourced, now time.Time) error {
	if t.Flights == nil {
		return nil
	}
	for _, s := range trip {
		if s.b.Kind != extract.KindFlight || s.b.Start.Before(now) || s.b.Start.Sub(now) > 48*time.Hour {
			continue
		}
		if env.tool() != nil {
			return nil
		}
		st, ok, err := t.Flights.FlightStatus(ctx, s.b.Number, dayOf(s.b.Start))
		if err != nil {
			return fmt.Errorf("flight status %s: %w", s.b.Number, err)
		}
		if ok {
			c.Details = append(c.Details, mission.Detail{Label: s.b.Number + " status", Value: st})
		}
	}
	return nil
}
