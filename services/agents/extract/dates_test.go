package extract

import (
	"testing"
	"time"
)

// ref is a Wednesday.
var ref = time.Date(2026, time.November, 18, 9, 15, 0, 0, time.UTC)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
func at(y int, m time.Month, d, h, mi int) time.Time {
	return time.Date(y, m, d, h, mi, 0, 0, time.UTC)
}

func TestDatesFindsEachFormat(t *testing.T) {
	tests := []struct {
		name, text string
		want       []time.Time
	}{
		{"iso date", "Your booking for 2026-12-05 is confirmed.", []time.Time{day(2026, 12, 5)}},
		{"iso datetime", "Departure 2026-12-05T07:45 local time", []time.Time{at(2026, 12, 5, 7, 45)}},
		{"day month year with weekday and time", "Check-in: Fri, 11 Dec 2026 from 15:00", []time.Time{at(2026, 12, 11, 15, 0)}},
		{"month day comma year", "Your order will arrive by December 3, 2026.", []time.Time{day(2026, 12, 3)}},
		{"ordinal without year rolls forward", "See you on the 4th of January!", []time.Time{day(2027, 1, 4)}},
		{"month-day without year in the near past stays this year", "You ordered on Oct 30 and it shipped.", []time.Time{day(2026, 10, 30)}},
		{"weekday decides the year", "Sat 9 Jan at 8pm", []time.Time{at(2027, 1, 9, 20, 0)}},
		{"slash is month first", "Date: 12/05/2026", []time.Time{day(2026, 12, 5)}},
		{"slash with day above twelve is day first", "Date: 25/12/2026", []time.Time{day(2026, 12, 25)}},
		{"dot is day first", "Datum: 05.12.2026 um 19:30", []time.Time{at(2026, 12, 5, 19, 30)}},
		{"tomorrow relative to the mail", "Your table is booked for tomorrow at 7:30 pm", []time.Time{at(2026, 11, 19, 19, 30)}},
		{"next weekday", "Can we meet next Monday?", []time.Time{day(2026, 11, 23)}},
		{"this weekday today counts", "Reminder: this Wednesday", []time.Time{day(2026, 11, 18)}},
		{"in n days", "Your trial ends in 3 days", []time.Time{day(2026, 11, 21)}},
		{"two dates in order", "Check-in 12 Dec 2026, check-out 15 Dec 2026", []time.Time{day(2026, 12, 12), day(2026, 12, 15)}},
		{"day range before month", "Dates: 11–13 Dec 2026", []time.Time{day(2026, 12, 11), day(2026, 12, 13)}},
		{"month then day range", "Festival pass valid Dec 4-6, 2026", []time.Time{day(2026, 12, 4), day(2026, 12, 6)}},
		{"range year applies to its first day", "Jan 30-31, 2025 archive", []time.Time{day(2025, 1, 30), day(2025, 1, 31)}},
		{"abbreviated month with dot", "Sept. 14, 2027 10am", []time.Time{at(2027, 9, 14, 10, 0)}},
		{"impossible date is dropped", "Ref 31/04/2026 and 2026-02-30", nil},
		{"no date in prices or codes", "Total $1,299.99, code X7KQ2P, call 020 7946 0958", nil},
		{"year alone is not a date", "Copyright 2026 Example Ltd", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Dates(tt.text, ref)
			if len(got) != len(tt.want) {
				t.Fatalf("Dates(%q) = %v, want %v", tt.text, got, tt.want)
			}
			for i := range got {
				if !got[i].Time.Equal(tt.want[i]) {
					t.Errorf("date %d of %q = %v (%q), want %v", i, tt.text, got[i].Time, got[i].Text, tt.want[i])
				}
			}
		})
	}
}

func TestTimesReadsClockFormats(t *testing.T) {
	tests := []struct {
		text     string
		wantH    int
		wantM    int
		wantNone bool
	}{
		{text: "at 14:30", wantH: 14, wantM: 30},
		{text: "at 2:30 PM", wantH: 14, wantM: 30},
		{text: "doors 7pm", wantH: 19},
		{text: "12 a.m.", wantH: 0},
		{text: "12pm", wantH: 12},
		{text: "19h45", wantH: 19, wantM: 45},
		{text: "noon", wantH: 12},
		{text: "score 31:99", wantNone: true},
		{text: "13pm", wantNone: true},
	}
	for _, tt := range tests {
		got := Times(tt.text)
		if tt.wantNone {
			if len(got) != 0 {
				t.Errorf("Times(%q) = %v, want none", tt.text, got)
			}
			continue
		}
		if len(got) != 1 || got[0].Hour != tt.wantH || got[0].Minute != tt.wantM {
			t.Errorf("Times(%q) = %v, want %02d:%02d", tt.text, got, tt.wantH, tt.wantM)
		}
	}
}
