package extract

import (
	"reflect"
	"testing"
)

func TestCodesFindsReferencesNotLookalikes(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // kind:value
	}{
		{"airline pnr", "Booking reference: X7KQ2P", []string{"confirmation:X7KQ2P"}},
		{"letters only pnr", "Your PNR is KXLMNP.", []string{"confirmation:KXLMNP"}},
		{"confirmation number", "Confirmation number: 83920174", []string{"confirmation:83920174"}},
		{"reservation hash", "Reservation #RZ-44821", []string{"confirmation:RZ-44821"}},
		{"order number", "Order #112-4432981-5521 has shipped", []string{"order:112-4432981-5521"}},
		{"ticket number", "Ticket number: TKT99281", []string{"ticket:TKT99281"}},
		{"phone is not a code", "Reservation line: +44 20 7946 0958", nil},
		{"us phone after label is not a code", "Reservation: 1-800-555-0199", nil},
		{"date is not a code", "Confirmation 2026-12-05", nil},
		{"word is not a code", "RESERVATION CONFIRMED", nil},
		{"money is not a code", "Order total 129.99", nil},
		{"small count is not a code", "Order 12 items", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range Codes(tt.text) {
				got = append(got, string(c.Kind)+":"+c.Value)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Codes(%q) = %v, want %v", tt.text, got, tt.want)
			}
		})
	}
}

func TestFlightNumbersOnlyKnownAirlines(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"Flight BA 117 departs at 10:30", []string{"BA117"}},
		{"U2 8123 and TP1351", []string{"U28123", "TP1351"}},
		{"Model XZ 450 and ZZ9000", nil},
		{"Call 0800 123 456", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, f := range FlightNumbers(tt.text) {
			got = append(got, f.String())
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FlightNumbers(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestAirportsNeedContext(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"London Heathrow (LHR) → New York (JFK)", []string{"LHR", "JFK"}},
		{"LIS-OPO", []string{"LIS", "OPO"}},
		{"Departing from CDG tomorrow", []string{"CDG"}},
		{"MAN UTD FANS", nil},
		{"SEA OF LOVE and SAN remains", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range Airports(tt.text) {
			got = append(got, p.IATA)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Airports(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestCitiesPreferLongestName(t *testing.T) {
	got := Cities("From New York to York via San Francisco")
	var names []string
	for _, p := range got {
		names = append(names, p.City)
	}
	want := []string{"New York", "York", "San Francisco"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("Cities = %v, want %v", names, want)
	}
}
