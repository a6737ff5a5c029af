package agent

import (
	"context"
	"strings"
	"testing"
	"time"

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
