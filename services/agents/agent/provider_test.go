package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/extract"
)

type fakePrices map[string]extract.Amount

func (f fakePrices) CurrentPrice(_ context.Context, product string) (extract.Amount, string, bool, error) {
	a, ok := f[product]
	return a, "Example Shop", ok, nil
}

type fakeFlights struct{ asked []string }

func (f *fakeFlights) FlightStatus(_ context.Context, number string, day time.Time) (string, bool, error) {
	f.asked = append(f.asked, number+"@"+day.Format("2006-01-02"))
	return "on time", true, nil
}

func TestProvidersAddOnlyWhatTheyReport(t *testing.T) {
	data := &Memory{Emails: loadMailbox(t, "shopping"), Prof: fixtureProfile}
	cards := runAgent(t, Shopping{Prices: fakePrices{"Dyson V15 Detect": {Cents: 59999, Currency: "USD"}}}, data, Input{Now: now})
	var found bool
	for _, c := range cards {
		for _, d := range c.Details {
			if d.Label == "Now at Example Shop" {
				found = true
				if c.SubjectKey != "watch:dyson v15 detect" || d.Value != "599.99 USD" {
					t.Errorf("provider price on %s: %v", c.SubjectKey, d)
				}
			}
		}
	}
	if !found {
		t.Fatal("provider price not shown")
	}

	flights := &fakeFlights{}
	travel := &Memory{Emails: loadMailbox(t, "travel"), Prof: fixtureProfile}
	soon := time.Date(2026, 12, 10, 9, 0, 0, 0, time.UTC) // the day before the London trip
	cards = runAgent(t, Travel{Flights: flights}, travel, Input{Now: soon})
	if len(flights.asked) != 1 || flights.asked[0] != "TP1351@2026-12-11" {
		t.Fatalf("asked about %v, want only the flight within 48 h", flights.asked)
	}
	var status string
	for _, d := range cards[0].Details {
		if strings.HasSuffix(d.Label, "status") {
			status = d.Label + ": " + d.Value
		}
	}
	if status != "TP1351 status: on time" {
		t.Fatalf("status detail = %q", status)
	}
	// without providers no price or status appears anywhere
	for _, c := range runAgent(t, Travel{}, travel, Input{Now: soon}) {
		for _, d := range c.Details {
			if strings.Contains(d.Label, "status") {
				t.Fatalf("status without a provider: %v", d)
			}
		}
	}
}

type fakeListings struct {
	events []ListedEvent
	err    error
	asked  []EventQuery
}

func (f *fakeListings) Name() string { return "Example Listings" }

func (f *fakeListings) UpcomingEvents(_ context.Context, q EventQuery) ([]ListedEvent, error) {
	f.asked = append(f.asked, q)
	return f.events, f.err
}

func TestEventListingsAreLabelledAndCarryOnlyTheProvidersData(t *testing.T) {
	jazz := time.Date(2027, 1, 9, 20, 0, 0, 0, time.UTC)
	lister := &fakeListings{events: []ListedEvent{
		{ID: "L1", Name: "Nubya Garcia", Start: jazz, HasTime: true, Venue: "Ronnie Scott's, 47 Frith St, London", URL: "https://listings.example/L1"},
		{ID: "L2", Name: "Mystery gig", Start: jazz, HasTime: true},                                          // no venue: not shown
		{ID: "L3", Name: "Undated jam", Venue: "Cafe Oto, London"},                                           // no date: not shown
		{ID: "L4", Name: "Arctic Monkeys - The Car Tour", Start: jazz, Venue: "O2 Arena, London"},            // held in mail
		{ID: "L5", Name: "Kamasi Washington live", Start: jazz, Venue: "Barbican Hall, London"},              // announced in mail
		{ID: "L6", Name: "Last night's show", Start: now.Add(-time.Hour), HasTime: true, Venue: "Jazz Cafe"}, // over
	}}
	data := &Memory{Emails: loadMailbox(t, "events"), Prof: fixtureProfile}
	cards := runAgent(t, Events{Lister: lister}, data, Input{Now: now})
	if len(lister.asked) != 1 || lister.asked[0].Place != "London" || !slices.Contains(lister.asked[0].Interests, "Music & Audio > Jazz") {
		t.Fatalf("asked %+v, want one query for the user's city and event interests", lister.asked)
	}
	var listed []mission.Card
	for _, c := range cards {
		if c.Kind == "listing" {
			listed = append(listed, c)
		}
	}
	if len(listed) != 1 {
		t.Fatalf("listing cards = %+v, want only the complete, new one", listed)
	}
	c := listed[0]
	var details []string
	for _, d := range c.Details {
		details = append(details, d.Label+": "+d.Value)
	}
	want := []string{"Listed by: Example Listings", "When: Sat 9 Jan 2027 20:00", "Venue: Ronnie Scott's, 47 Frith St, London", "Listing: https://listings.example/L1"}
	if c.Title != "Listed by Example Listings: Nubya Garcia" || !slices.Equal(details, want) || c.SubjectKey != "listed:example listings:L1" {
		t.Fatalf("card = %q %v %q", c.Title, details, c.SubjectKey)
	}
	if !c.EventAt.Equal(jazz) || c.Primary.Payload.(mission.CalendarEvent).Location != "Ronnie Scott's, 47 Frith St, London" {
		t.Fatalf("card date/place not the provider's: %v %+v", c.EventAt, c.Primary.Payload)
	}
	if len(c.Evidence) != 1 || c.Evidence[0].EmailID != "ev-am" {
		t.Fatalf("evidence = %+v, want the ticket that placed the user in London", c.Evidence)
	}

	// without a lister, or with a failing one, cards come from mail only
	for name, a := range map[string]Events{"none": {}, "failing": {Lister: &fakeListings{err: errors.New("503")}}} {
		env := NewEnv(data, nil, a.Level().Limits())
		got, err := a.Run(context.Background(), env, Input{Now: now})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range got {
			if c.Kind == "listing" {
				t.Fatalf("%s: listing card %q", name, c.Title)
			}
		}
		if len(got) != 2 || (name == "failing") != (len(env.Notes()) == 1) {
			t.Fatalf("%s: %d cards, notes %q", name, len(got), env.Notes())
		}
	}
}
