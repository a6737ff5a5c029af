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

// fill formats i into s when s has a verb.
func fill(s string, i int) string {
	if strings.Contains(s, "%") {
		return fmt.Sprintf(s, i)
	}
	return s
}

// WriteMbox writes msgs as an mboxrd file (body lines starting with "From "
// are escaped).
func WriteMbox(w io.Writer, msgs []Message) error {
	var b bytes.Buffer
	for _, m := range msgs {
		b.Reset()
		fmt.Fprintf(&b, "From %s %s\n", m.From, m.Date.Format("Mon Jan _2 15:04:05 2006"))
		fmt.Fprintf(&b, "Message-ID: %s\nFrom: %s\nTo: %s\nSubject: %s\nDate: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n",
			m.MessageID, m.From, m.To, m.Subject, m.Date.Format(time.RFC1123Z))
		for _, line := range bytes.SplitAfter([]byte(m.Body), []byte("\n")) {
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
