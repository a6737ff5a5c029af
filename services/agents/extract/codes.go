package extract

import (
	"regexp"
	"strings"
)

// FlightNumber is a flight designator such as "BA 117".
type FlightNumber struct {
	Start, End int
	Airline    string // IATA airline code, e.g. "BA"
	Number     string // digits
	Carrier    string // airline name from the built-in table
}

// String returns the normalised designator, e.g. "BA117".
func (f FlightNumber) String() string { return f.Airline + f.Number }

var airlines = map[string]string{
	"BA": "British Airways", "AA": "American Airlines", "UA": "United", "DL": "Delta", "LH": "Lufthansa",
	"AF": "Air France", "KL": "KLM", "IB": "Iberia", "U2": "easyJet", "FR": "Ryanair", "EK": "Emirates",
	"QR": "Qatar Airways", "SQ": "Singapore Airlines", "AC": "Air Canada", "VS": "Virgin Atlantic",
	"TP": "TAP Air Portugal", "LX": "SWISS", "OS": "Austrian", "SK": "SAS", "AY": "Finnair", "EI": "Aer Lingus",
	"VY": "Vueling", "W6": "Wizz Air", "NH": "ANA", "JL": "Japan Airlines", "CX": "Cathay Pacific",
	"QF": "Qantas", "TK": "Turkish Airlines", "AZ": "ITA Airways", "B6": "JetBlue", "WN": "Southwest",
	"AS": "Alaska Airlines", "NK": "Spirit", "F9": "Frontier", "EW": "Eurowings", "DY": "Norwegian",
	"LO": "LOT", "SN": "Brussels Airlines", "EY": "Etihad", "ET": "Ethiopian", "KE": "Korean Air",
	"AI": "Air India", "NZ": "Air New Zealand", "LA": "LATAM", "AM": "Aeroméxico", "HA": "Hawaiian",
}

var (
	flightRe = regexp.MustCompile(`\b([A-Z]{2}|[A-Z][0-9]|[0-9][A-Z])\s?(\d{2,4})\b`)
	// a confirmation code after its label: "Booking reference: X7KQ2P"
	codeLabelRe = regexp.MustCompile(`(?i:\b(confirmation(?:\s+(?:number|code|no\.?|#))?|booking\s+(?:reference|ref\.?|number|code|id|no\.?)|reservation\s+(?:number|code|id|no\.?|#)|reservation|record\s+locator|pnr|reference(?:\s+(?:number|no\.?))?|ticket\s+(?:number|no\.?)|order(?:\s+(?:number|no\.?|id|#))?))\s*(?:is\s+|:\s*|#\s*|-\s*|=\s*)*#?\s*([A-Z0-9][A-Z0-9.-]{3,24})\b`)
	moneyLikeRe = regexp.MustCompile(`^\d+[.,]\d{1,2}$`)
	phoneTailRe = regexp.MustCompile(`^[ ]\d{3,4}\b`)
	phoneLikeRe = regexp.MustCompile(`^\d{1,4}(?:-\d{2,4}){2,}$|^0\d{9,10}$`)
)

var codeStopwords = map[string]bool{
	"CONFIRMED": true, "DETAILS": true, "NUMBER": true, "REFERENCE": true, "BOOKING": true, "RESERVATION": true,
	"TICKET": true, "ORDER": true, "STATUS": true, "SUMMARY": true, "CANCELLED": true, "UPDATE": true,
}

// FlightNumbers returns flight designators of known airlines in text.
func FlightNumbers(text string) []FlightNumber {
	var out []FlightNumber
	for _, m := range flightRe.FindAllStringSubmatchIndex(text, -1) {
		al := text[m[2]:m[3]]
		name, ok := airlines[al]
		if !ok {
			continue
		}
		// "BA 2026" directly after a month is a year, not a flight; dates are handled elsewhere
		num := text[m[4]:m[5]]
		out = append(out, FlightNumber{Start: m[0], End: m[1], Airline: al, Number: strings.TrimLeft(num, "0"), Carrier: name})
	}
	return out
}

// CodeKind tells what a reference code identifies.
type CodeKind string

// Kinds of reference code.
const (
	CodeConfirmation CodeKind = "confirmation"
	CodeOrder        CodeKind = "order"
	CodeTicket       CodeKind = "ticket"
)

// Code is a booking confirmation, order or ticket reference.
type Code struct {
	Start, End int
	Kind       CodeKind
	Value      string
}

// Codes returns reference codes written after their label ("Confirmation
// number: 8XK2QP", "PNR K7LMNP", "Order #112-4432-99"). A value that is a phone
// number, a date, a money amount or a plain word is rejected.
func Codes(text string) []Code {
	var out []Code
	seen := map[string]bool{}
	for _, m := range codeLabelRe.FindAllStringSubmatchIndex(text, -1) {
		label := strings.ToLower(text[m[2]:m[3]])
		val := strings.TrimRight(text[m[4]:m[5]], "-.")
		if !plausibleCode(text, m[4], val) {
			continue
		}
		kind := CodeConfirmation
		switch {
		case strings.HasPrefix(label, "order"):
			kind = CodeOrder
		case strings.HasPrefix(label, "ticket"):
			kind = CodeTicket
		}
		if seen[string(kind)+val] {
			continue
		}
		seen[string(kind)+val] = true
		out = append(out, Code{Start: m[4], End: m[4] + len(val), Kind: kind, Value: val})
	}
	return out
}

func plausibleCode(text string, at int, v string) bool {
	if len(v) < 4 || codeStopwords[v] {
		return false
	}
	digits, letters := 0, 0
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'A' && r <= 'Z':
			letters++
		}
	}
	if digits == 0 && letters != 6 { // all-letter codes: airline PNRs are six letters
		return false
	}
	if letters == 0 && phoneLikeRe.MatchString(v) {
		return false
	}
	if letters == 0 && digits < 5 { // "Order 12" is a count, not a reference
		return false
	}
	// a phone number continues with spaces or a '+' before it
	if at > 0 && strings.ContainsAny(text[max(0, at-2):at], "+(") {
		return false
	}
	rest := text[at+len(v) : min(len(text), at+len(v)+6)]
	if letters == 0 && phoneTailRe.MatchString(rest) { // "020 7946 0958"
		return false
	}
	if moneyLikeRe.MatchString(v) {
		return false
	}
	if isoDateRe.MatchString(v) || numDateRe.MatchString(v) {
		return false
	}
	if letters == 0 && strings.HasPrefix(rest, ".") && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9' { // 123.45
		return false
	}
	return true
}
