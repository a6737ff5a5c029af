// Package testmail writes realistic test mailboxes (mbox files of generated
// emails) for tests and benchmarks.
package testmail

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// Message is one generated email.
type Message struct {
	MessageID string
	From      string
	To        string
	Subject   string
	Date      time.Time
	Body      string
}

var topics = []struct{ from, subject, body string }{
	{"orders@shop.example", "Your order #%d has shipped", "Hi, your order of a Sony WH-1000XM5 headphones (EUR 279.00) has shipped and arrives Thursday."},
	{"news@cooking.example", "Weekly recipes %d: autumn soups", "This week: pumpkin soup, minestrone and a lentil stew. Happy cooking!"},
	{"noreply@airline.example", "Booking confirmation ABC%03d", "Your flight LH 1234 from Munich (MUC) to Lisbon (LIS) on 12 March 2027 at 07:35 is confirmed."},
	{"tickets@venue.example", "Your tickets for concert %d", "Thanks for your purchase. Doors open 19:00 at the Olympiahalle, 3 May 2027."},
	{"friend%d@mail.example", "Dinner on Saturday?", "Shall we try the new Italian place on Main Street? I can book a table for 8pm."},
}

// Messages returns n deterministic messages spread over a year of dates.
func Messages(n int) []Message {
	base := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	out := make([]Message, n)
	for i := range out {
		t := topics[i%len(topics)]
		out[i] = Message{
			MessageID: fmt.Sprintf("<msg-%05d@test.ownyou>", i),
			From:      fill(t.from, i),
			To:        "me@home.example",
			Subject:   fill(t.subject, i),
			Date:      base.Add(time.Duration(i) * 97 * time.Minute),
			Body:      t.body + fmt.Sprintf("\n\nReference %d.\nFrom the team\n", i),
		}
	}
	return out
}

// Bookings returns four messages the local agents turn into mission cards
// without any LLM: a flight and a hotel for the same trip (one travel card), a
// restaurant reservation and an online order. Every date is relative to now
// (sent during the past week, booked two to four weeks ahead), so the cards
// stay upcoming whenever the test runs. Their subjects are stable: "Your
// flight itinerary X7KQ2P", "Your stay at The Hoxton, Shoreditch is
// confirmed", "Your reservation at Bistro Verde is confirmed" and "Your
// Amazon.com order #112-4432981-5521".
func Bookings(now time.Time) []Message {
	now = now.UTC().Truncate(time.Minute)
	day := func(d int) time.Time { // midnight, d days from now
		t := now.AddDate(0, 0, d)
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	long := func(t time.Time) string { return t.Format("Mon, 2 Jan 2006") }
	out, back, table := day(21), day(24), day(14)
	return []Message{{
		MessageID: "<booking-flight@test.ownyou>",
		From:      "no-reply@flytap.example",
		To:        "me@home.example",
		Subject:   "Your flight itinerary X7KQ2P",
		Date:      now.AddDate(0, 0, -6),
		Body: "Dear Alex Morgan,\n\nThank you for booking with TAP Air Portugal. Your flight itinerary is below.\n\n" +
			"Booking reference: X7KQ2P\n\nOUTBOUND\nFlight TP 1351  Lisbon (LIS) → London Heathrow (LHR)\n" +
			"Depart: " + long(out) + " 07:05   Arrive: " + long(out) + " 09:50\n\n" +
			"RETURN\nFlight TP 1366  London Heathrow (LHR) → Lisbon (LIS)\n" +
			"Depart: " + long(back) + " 18:40   Arrive: " + long(back) + " 21:25\n\nTotal paid: €312,40\n",
	}, {
		MessageID: "<booking-hotel@test.ownyou>",
		From:      "stay@thehoxton.example",
		To:        "me@home.example",
		Subject:   "Your stay at The Hoxton, Shoreditch is confirmed",
		Date:      now.AddDate(0, 0, -5),
		Body: "Hi Alex,\nConfirmation number: 83920174\n\nHotel: The Hoxton, Shoreditch\n" +
			"Address: 81 Great Eastern St, London EC2A 3HU\n" +
			"Check-in: " + long(out) + " (from 15:00)\nCheck-out: " + long(back) + " (until 12:00)\n" +
			"Guests: 1 adult, 3 nights\nTotal: £567.00\n",
	}, {
		MessageID: "<booking-table@test.ownyou>",
		From:      "no-reply@opentable.example",
		To:        "me@home.example",
		Subject:   "Your reservation at Bistro Verde is confirmed",
		Date:      now.AddDate(0, 0, -3),
		Body: "Hi Alex, you're all set! Table for 2 on " + table.Format("Monday, 2 January 2006") + " at 7:30 PM.\n\n" +
			"Confirmation #: BV-55120\nAddress: 12 Rua das Flores, Lisbon\n",
	}, {
		MessageID: "<booking-order@test.ownyou>",
		From:      "auto-confirm@amazon.example",
		To:        "me@home.example",
		Subject:   "Your Amazon.com order #112-4432981-5521",
		Date:      now.AddDate(0, 0, -2),
		Body: "Thanks for your order, Alex!\n\nOrder #112-4432981-5521\nPlaced on " + now.AddDate(0, 0, -2).Format("January 2, 2006") + "\n\n" +
			"Sony WH-1000XM5 Wireless Headphones   Qty: 1   $329.99\n2 x USB-C Charging Cable 2m   $25.98\n" +
			"Subtotal: $355.97\nShipping: $0.00\nTax: $28.48\nOrder total: $384.45\n",
	}}
}

// fill formats i into s when s has a verb.
func fill(s string, i int) string {
	if strings.Contains(s, "%") {
		return fmt.Sprintf(s, i)
	}
	return s
}

// Raw is the message as RFC 5322 text (LF line ends), as a mail server
// would hand it out.
func (m Message) Raw() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Message-ID: %s\nFrom: %s\nTo: %s\nSubject: %s\nDate: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n",
		m.MessageID, m.From, m.To, m.Subject, m.Date.Format(time.RFC1123Z))
	b.WriteString(m.Body)
	return b.Bytes()
}

// WriteMbox writes msgs as an mboxrd file (body lines starting with "From "
// are escaped).
func WriteMbox(w io.Writer, msgs []Message) error {
	var b bytes.Buffer
	for _, m := range msgs {
		b.Reset()
		fmt.Fprintf(&b, "From %s %s\n", m.From, m.Date.Format("Mon Jan _2 15:04:05 2006"))
		raw := m.Raw()
		head := bytes.Index(raw, []byte("\n\n")) + 2
		b.Write(raw[:head])
		for _, line := range bytes.SplitAfter(raw[head:], []byte("\n")) {
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				b.WriteByte('>')
			}
			b.Write(line)
		}
		b.WriteString("\n\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
