package local

import (
	"net/mail"
	"regexp"
	"strings"
)

// boilerplate marks a sentence or line that says nothing about the topic of
// an email: footers, legal text, preference links, tracking notes. Left in,
// their words ("account", "policy", "registered", "data") pull every
// commercial email towards finance and technology.
var boilerplate = regexp.MustCompile(`(?i)(unsubscribe|opt[- ]out|view (it |this email )?in (your|a) browser|privacy (policy|notice)|terms (and|&) conditions|terms of (use|service)|all rights reserved|©|\(c\) \d{4}|registered (office|in england|company)|company (no|number)|vat (no|number|reg)|you('re| are) receiving this|this (e-?mail|message) was sent|manage (your )?(email )?preferences|update your preferences|do not reply|don't reply|no-?reply|please don't reply|sent from my|if you no longer wish|add us to your address book|we'll never ask|never ask for your (password|passcode|pin)|download (our|the) app)`)

var (
	reURL      = regexp.MustCompile(`(?i)\b(https?://|www\.)\S+`)
	reAddress  = regexp.MustCompile(`\S+@\S+\.\S+`)
	reSentence = regexp.MustCompile(`[^.!?\n]+[.!?]*`)
	// reGenericPhrase are phrases whose words name a topic they are not
	// about: "2 business days" is a delivery time, not business news.
	reGenericPhrase = regexp.MustCompile(`(?i)\b(business|working) days?\b`)
)

// cleanText drops boilerplate sentences, links and addresses from an email
// body, keeping what the email is about.
func cleanText(s string) string {
	s = reURL.ReplaceAllString(s, " ")
	s = reAddress.ReplaceAllString(s, " ")
	s = reGenericPhrase.ReplaceAllString(s, " ")
	var b strings.Builder
	for _, sent := range reSentence.FindAllString(s, -1) {
		if boilerplate.MatchString(sent) {
			continue
		}
		b.WriteString(sent)
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

// senderWords returns the display name and the domain labels of a From
// header ("Greenfield Vets <r@greenfieldvets.com>" → "Greenfield Vets
// greenfieldvets"): who sends an email often says what it is about.
func senderWords(from string) string {
	name, addr := from, ""
	if a, err := mail.ParseAddress(from); err == nil {
		name, addr = a.Name, a.Address
	} else if i := strings.LastIndex(from, "@"); i >= 0 {
		name, addr = "", from
	}
	var parts []string
	if name != "" {
		parts = append(parts, name)
	}
	if i := strings.LastIndex(addr, "@"); i >= 0 {
		labels := strings.Split(strings.ToLower(addr[i+1:]), ".")
		for _, l := range labels {
			if len(l) > 3 && !genericDomain[l] {
				parts = append(parts, l)
			}
		}
	}
	return strings.Join(parts, " ")
}

// genericDomain are domain labels that say nothing about a sender's trade.
var genericDomain = map[string]bool{
	"gmail": true, "googlemail": true, "outlook": true, "hotmail": true, "yahoo": true, "icloud": true,
	"btinternet": true, "mail": true, "email": true, "mailer": true, "info": true, "news": true,
	"newsletter": true, "newsletters": true, "send": true, "mailchimp": true, "sendgrid": true,
}

// genericWords are transactional and mail-handling words that occur in mail
// about any topic: "order", "booking", "confirmed", "total". They decide
// whether an email is transactional (rules.go), never what it is about, so
// they are left out of the email's embedding and word votes: the merchant and
// what was bought decide the topic.
var genericWords = map[string]bool{
	"order": true, "orders": true, "ordered": true, "booking": true, "bookings": true, "booked": true,
	"confirm": true, "confirmed": true, "confirmation": true, "reference": true, "ref": true, "total": true,
	"subtotal": true, "payment": true, "paid": true, "pay": true, "receipt": true,
	"thanks": true, "thank": true, "hi": true, "hello": true, "dear": true, "reminder": true,
	"email": true, "reply": true, "account": true, "details": true, "number": true, "please": true,
	"update": true, "info": true, "information": true, "customer": true, "customers": true,
	"online": true, "click": true, "link": true,
	"free": true, "new": true, "now": true, "today": true, "week": true, "month": true, "manage": true,
	"status": true, "track": true, "tracking": true, "view": true, "available": true, "estimated": true,
}

// contentTokens tokenizes text and drops the generic words and tokens with
// digits (references, prices, times).
func contentTokens(s string) []string {
	var out []string
	for _, w := range tokenize(s) {
		if genericWords[w] || strings.ContainsAny(w, "0123456789") {
			continue
		}
		out = append(out, w)
	}
	return out
}
