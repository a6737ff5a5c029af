// Command agents benchmarks the mission agents: booking extraction
// throughput, one run of each agent over a synthetic mailbox, and feed
// ranking. It prints one "BENCH <name> <value> <unit>" line per figure.
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/agent"
	"github.com/ownyou/home/services/agents/extract"
)

var now = time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)

func mailbox(n int) []agent.Email {
	r := rand.New(rand.NewPCG(1, 2))
	cities := [][2]string{{"Lisbon", "LIS"}, {"London", "LHR"}, {"Paris", "CDG"}, {"Rome", "FCO"}, {"Berlin", "BER"}}
	var out []agent.Email
	for i := range n {
		sent := now.Add(-time.Duration(r.IntN(200*24)) * time.Hour)
		d := sent.AddDate(0, 0, 5+r.IntN(60))
		a, b := cities[r.IntN(5)], cities[r.IntN(5)]
		e := agent.Email{ID: fmt.Sprintf("e%d", i), SourceID: "s1", Date: sent, From: "Sender <x@example.com>"}
		switch i % 6 {
		case 0:
			e.Subject = "Your flight itinerary"
			e.Body = fmt.Sprintf("Booking reference: K%05dQ\nFlight TP %d  %s (%s) → %s (%s)\nDepart: %s 07:05   Arrive: %s 09:50\n",
				i, 1000+i%900, a[0], a[1], b[0], b[1], d.Format("Mon, 2 Jan 2006"), d.Format("Mon, 2 Jan 2006"))
			e.Categories = []string{"Travel > Air Travel"}
		case 1:
			e.Subject = "Your stay is confirmed"
			e.Body = fmt.Sprintf("Confirmation number: %d\nHotel: Hotel %d\nAddress: 1 Main St, %s\nCheck-in: %s\nCheck-out: %s\n",
				80000000+i, i, a[0], d.Format("Mon, 2 Jan 2006"), d.AddDate(0, 0, 2).Format("Mon, 2 Jan 2006"))
		case 2:
			e.Subject = fmt.Sprintf("Your order #%d", 1000000+i)
			e.Body = fmt.Sprintf("Thanks for your order!\nOrder #%d\nWidget model %d   Qty: 1   $%d.99\nOrder total: $%d.99\n", 1000000+i, i, 10+i%90, 10+i%90)
		case 3:
			e.Subject = "Your reservation at Bistro " + a[0] + " is confirmed"
			e.Body = fmt.Sprintf("Table for 2 on %s at 7:30 PM.\nConfirmation #: BV-%d\n", d.Format("Monday, 2 January 2006"), i)
		case 4:
			e.Subject = "Weekly newsletter"
			e.Body = "Stories about technology and cooking this week. Read online. Unsubscribe."
			e.Categories = []string{"Technology & Computing"}
		default:
			e.Subject = "Re: lunch"
			e.Body = "Sounds good, see you then. Call me on 020 7946 0958 if anything changes."
		}
		out = append(out, e)
	}
	return out
}

func main() {
	mails := mailbox(3000)
	start := time.Now()
	n := 0
	for time.Since(start) < 2*time.Second {
		for _, e := range mails {
			extract.Bookings(e.Message())
			n++
		}
	}
	fmt.Printf("BENCH agents_extract_bookings %.0f mails/s\n", float64(n)/time.Since(start).Seconds())

	data := &agent.Memory{Emails: mails, Prof: agent.Profile{Interests: []agent.Interest{{Name: "Technology & Computing", Confidence: 0.8}}},
		SourceStats: []agent.SourceStat{{ID: "s1", Kind: "imap", Name: "bench", Emails: len(mails), Classified: len(mails), Embedded: len(mails)}}}
	for _, a := range agent.All(agent.Providers{}) {
		lim := a.Level().Limits()
		t0 := time.Now()
		env := agent.NewEnv(data, nil, lim)
		cards, err := a.Run(context.Background(), env, agent.Input{Now: now})
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", a.Name(), err)
			os.Exit(1)
		}
		fmt.Printf("BENCH agents_run_%s_3000_mails %.1f ms\n", a.Name(), float64(time.Since(t0).Microseconds())/1000)
		fmt.Printf("BENCH agents_cards_%s_3000_mails %d cards\n", a.Name(), len(cards))
	}

	var cards []mission.Card
	for i := range 1000 {
		c := mission.New("travel", "trip", fmt.Sprint(i), now.Add(-time.Duration(i)*time.Hour))
		c.Urgency = mission.Urgency(i % 4)
		c.EventAt = now.Add(time.Duration(i) * time.Hour)
		cards = append(cards, c)
	}
	prefs := mission.Learn([]mission.Feedback{{Agent: "travel", CardKind: "trip", Kind: mission.FeedbackRate, Rating: mission.RatingLove}})
	t0 := time.Now()
	const reps = 200
	for range reps {
		mission.Rank(cards, prefs, nil, now)
	}
	fmt.Printf("BENCH agents_rank_1000_cards %.0f us\n", float64(time.Since(t0).Microseconds())/reps)
}
