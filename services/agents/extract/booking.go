package extract

import (
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is the part of a mail extraction reads.
type Message struct {
	From    string    // RFC 5322 From, e.g. `"Air Lisboa" <no-reply@airlisboa.example>`
	Subject string    // decoded subject
	Body    string    // plain-text body
	Date    time.Time // the mail's Date header; anchors relative dates
}

func (m Message) text() string { return m.Subject + "\n" + m.Body }

// Kind is the kind of booking or purchase a mail records.
type Kind string

// Booking kinds.
const (
	KindFlight     Kind = "flight"
	KindTrain      Kind = "train"
	KindHotel      Kind = "hotel"
	KindCar        Kind = "car"
	KindRestaurant Kind = "restaurant"
	KindEvent      Kind = "event"
	KindOrder      Kind = "order"
)

// extractors read the bookings of each kind from a mail, its text and its
// "Label: value" fields.
var extractors = map[Kind]func(m Message, text string, fs map[string]string) []Booking{
	KindFlight: flights, KindTrain: trains, KindHotel: hotels, KindCar: cars,
	KindRestaurant: restaurants, KindEvent: events, KindOrder: orders,
}

// Booking is one booking or order stated in a mail. Times are in the mail
// date's location; zero fields were not stated. The byte offsets inside
// From and To are relative to the part of the mail they were read from.
type Booking struct {
	Kind      Kind
	Provider  string    // airline, rail company, hotel brand, rental company, merchant
	Name      string    // hotel, restaurant or event name
	Code      string    // confirmation / booking reference
	Number    string    // flight or train number
	Start     time.Time // departure, check-in, pick-up, reservation, event start, order date
	End       time.Time // arrival, check-out, drop-off
	HasTime   bool      // Start carries a stated time of day
	From, To  Place     // flight and train endpoints; car pick-up (From) and drop-off (To)
	Location  string    // hotel / restaurant address or city, event venue
	PartySize int
	Items     []LineItem
	Total     *Amount
	Cancelled bool
	Excerpt   string // the line of the mail that states the booking
}

// LineItem is one product line of an order.
type LineItem struct {
	Name  string
	Qty   int
	Price Amount // the price shown on the line
}

var kindWords = map[Kind][]string{
	KindFlight:     {"flight", "boarding pass", "e-ticket", "itinerary", "airline", "check in online", "baggage", "gate"},
	KindTrain:      {"train", "rail", "eurostar", "amtrak", "trainline", "coach", "carriage", "platform", "sncf", "renfe", "deutsche bahn"},
	KindHotel:      {"hotel", "check-in", "check-out", "check in:", "your stay", "night", "room", "guest house", "airbnb", "booking.com", "property"},
	KindCar:        {"car rental", "car hire", "rental car", "pick-up", "pickup", "drop-off", "hertz", "avis", "sixt", "europcar", "enterprise rent"},
	KindRestaurant: {"table for", "reservation at", "party of", "opentable", "resy", "dinner", "lunch", "restaurant", "brunch"},
	KindEvent:      {"ticket", "venue", "doors open", "concert", "festival", "ticketmaster", "eventbrite", "admission", "performance", "show", "gig", "theatre", "match"},
	KindOrder:      {"order", "receipt", "shipped", "your purchase", "subtotal", "order total", "delivery", "dispatched", "invoice", "qty"},
}

// strong signals that decide the kind on their own
var kindStrong = []struct {
	re   *regexp.Regexp
	kind Kind
	w    int
}{
	{regexp.MustCompile(`(?i)\b(boarding pass|e-ticket receipt|flight (?:confirmation|itinerary|booking)|your flight)\b`), KindFlight, 6},
	{regexp.MustCompile(`(?i)\b(train tickets?|rail tickets?|e-ticket for your (?:train|journey)|your journey)\b`), KindTrain, 6},
	{regexp.MustCompile(`(?i)\b(check-?in|arrival)\s*:`), KindHotel, 4},
	{regexp.MustCompile(`(?i)\b(check-?out)\s*:`), KindHotel, 4},
	{regexp.MustCompile(`(?i)\b(pick-?up|drop-?off)\s*:`), KindCar, 5},
	{regexp.MustCompile(`(?i)\b(table for \w+|party of \w+|reservation at|your reservation at)\b`), KindRestaurant, 6},
	{regexp.MustCompile(`(?i)\b(venue|doors(?: open)?)\s*:`), KindEvent, 5},
	{regexp.MustCompile(`(?i)\b(order (?:confirmation|#|number|total)|thanks for your order|order summary|receipt for your)\b`), KindOrder, 6},
}

var cancelledRe = regexp.MustCompile(`(?i)\b(cancell?ed|cancell?ation confirmed|has been cancell?ed)\b`)

// Classify returns the kind of booking a mail records, or "" for a mail that
// records none.
func Classify(m Message) Kind {
	t := strings.ToLower(m.text())
	score := map[Kind]int{}
	for k, ws := range kindWords {
		for _, w := range ws {
			if strings.Contains(t, w) {
				score[k]++
			}
		}
	}
	for _, s := range kindStrong {
		if s.re.MatchString(m.text()) {
			score[s.kind] += s.w
		}
	}
	if len(FlightNumbers(m.text())) > 0 && len(Airports(m.text())) > 0 {
		score[KindFlight] += 6
	}
	best, bestScore := Kind(""), 3
	for _, k := range []Kind{KindFlight, KindTrain, KindCar, KindHotel, KindRestaurant, KindEvent, KindOrder} {
		if score[k] > bestScore {
			best, bestScore = k, score[k]
		}
	}
	return best
}

var fieldLineRe = regexp.MustCompile(`(?m)^[ \t>*•-]*([A-Za-z][A-Za-z #/&.'()-]{0,30}?)\s*:[ \t]*(.+?)\s*$`)

// Fields returns the "Label: value" lines of a body keyed by lowercased label
// with punctuation removed ("Check-in" → "check in"); the first wins.
func Fields(body string) map[string]string {
	out := map[string]string{}
	for _, m := range fieldLineRe.FindAllStringSubmatch(body, -1) {
		k := normLabel(m[1])
		if _, ok := out[k]; !ok && k != "" {
			out[k] = m[2]
		}
	}
	return out
}

func normLabel(s string) string {
	s = strings.ToLower(s)
	s = strings.NewReplacer("-", " ", "#", " ", "/", " ", ".", " ", "(", " ", ")", " ", "'", "").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

func field(fs map[string]string, names ...string) string {
	for _, n := range names {
		if v, ok := fs[n]; ok {
			return v
		}
	}
	return ""
}

func firstDate(s string, ref time.Time) (DateMatch, bool) {
	ds := Dates(s, ref)
	if len(ds) == 0 {
		return DateMatch{}, false
	}
	return ds[0], true
}

// Bookings returns the bookings a mail records: one per flight leg for flight
// mails, one for other kinds, none when the mail records no booking or lacks
// the facts that would make it one (a trip without a date is not a booking).
func Bookings(m Message) []Booking {
	kind := Classify(m)
	if kind == "" {
		return nil
	}
	text := m.text()
	bs := extractors[kind](m, text, Fields(m.Body))
	cancelled := cancelledRe.MatchString(text)
	for i := range bs {
		bs[i].Kind = kind
		bs[i].Cancelled = cancelled
		if bs[i].Code == "" {
			bs[i].Code = firstCode(text, CodeConfirmation)
		}
		if bs[i].Provider == "" {
			bs[i].Provider = SenderName(m.From)
		}
	}
	return bs
}

func firstCode(text string, k CodeKind) string {
	for _, c := range Codes(text) {
		if c.Kind == k {
			return c.Value
		}
	}
	return ""
}

// SenderName returns the display name of a From header, or the second-level
// domain when there is none ("orders@shop.example.com" → "shop").
func SenderName(from string) string {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return strings.TrimSpace(from)
	}
	if a.Name != "" {
		return a.Name
	}
	at := strings.LastIndex(a.Address, "@")
	parts := strings.Split(a.Address[at+1:], ".")
	if len(parts) >= 2 {
		return parts[len(parts)-2]
	}
	return a.Address
}

// lineAt returns the trimmed line containing byte offset i.
func lineAt(text string, i int) string {
	s := strings.LastIndex(text[:i], "\n") + 1
	e := strings.Index(text[i:], "\n")
	if e < 0 {
		e = len(text)
	} else {
		e += i
	}
	return Excerpt(text[s:e], 200)
}

// Excerpt trims s to at most n bytes on a word boundary (or a character
// boundary when a word is longer), collapsing spaces.
func Excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndex(s[:n], " ")
	if cut < n/2 {
		cut = n
		for cut > 0 && !utf8.RuneStart(s[cut]) { // never split a character
			cut--
		}
	}
	return s[:cut] + "…"
}

func lineStart(text string, i int) int { return strings.LastIndex(text[:i], "\n") + 1 }

func withTime(d DateMatch, tm *TimeMatch) (time.Time, bool) {
	if d.HasTime || tm == nil {
		return d.Time, d.HasTime
	}
	t := d.Time
	return time.Date(t.Year(), t.Month(), t.Day(), tm.Hour, tm.Minute, 0, 0, t.Location()), true
}

func flights(m Message, text string, fs map[string]string) []Booking {
	fns := FlightNumbers(text)
	code := firstCode(text, CodeConfirmation)
	var out []Booking
	var lastDate *DateMatch
	for i, fn := range fns {
		start := headingStart(text, fn.Start, m.Date)
		if i > 0 && fns[i-1].End > start {
			start = fns[i-1].End
		}
		end := len(text)
		if i+1 < len(fns) {
			end = headingStart(text, fns[i+1].Start, m.Date)
			if end <= fn.End {
				end = fns[i+1].Start
			}
		}
		seg := text[start:end]
		b := Booking{Provider: fn.Carrier, Number: fn.String(), Code: code, Excerpt: lineAt(text, fn.Start)}
		places := Airports(seg)
		if len(places) < 2 {
			places = Places(seg)
		}
		if len(places) > 0 {
			b.From = places[0]
		}
		for _, p := range places[1:] {
			if p.City != b.From.City {
				b.To = p
				break
			}
		}
		ds := Dates(seg, m.Date)
		var loose []TimeMatch
		for _, tm := range Times(seg) {
			inside := false
			for _, d := range ds {
				if tm.Start >= d.Start && tm.End <= d.End {
					inside = true
				}
			}
			if !inside {
				loose = append(loose, tm)
			}
		}
		switch {
		case len(ds) > 0:
			var t0, t1 *TimeMatch
			if len(loose) > 0 {
				t0 = &loose[0]
			}
			if len(loose) > 1 {
				t1 = &loose[1]
			}
			b.Start, b.HasTime = withTime(ds[0], t0)
			if len(ds) > 1 {
				b.End, _ = withTime(ds[1], t1)
			} else if t1 != nil {
				b.End, _ = withTime(DateMatch{Time: ds[0].Time}, t1)
				if b.End.Before(b.Start) {
					b.End = b.End.AddDate(0, 0, 1)
				}
			}
			lastDate = &ds[0]
		case lastDate != nil: // a leg listed under a date heading shared with the previous leg
			var t0 *TimeMatch
			if len(loose) > 0 {
				t0 = &loose[0]
			}
			b.Start, b.HasTime = withTime(DateMatch{Time: lastDate.Time}, t0)
		default:
			// the date may precede the flight number on the same line or the line before
			pre := text[lineStart(text, max(0, lineStart(text, fn.Start)-1)):fn.Start]
			if d, ok := lastOf(Dates(pre, m.Date)); ok {
				var t0 *TimeMatch
				if len(loose) > 0 {
					t0 = &loose[0]
				}
				b.Start, b.HasTime = withTime(d, t0)
				lastDate = &d
			}
		}
		if b.Start.IsZero() || (b.From.City == "" && b.To.City == "") {
			continue
		}
		out = append(out, b)
	}
	return out
}

// headingStart returns the start of the line holding offset i, or of the
// line before it when that line is only a date (a heading such as
// "Sat 12 Dec 2026" above a flight).
func headingStart(text string, i int, ref time.Time) int {
	ls := lineStart(text, i)
	if ls == 0 {
		return ls
	}
	prev := lineStart(text, ls-1)
	line := text[prev : ls-1]
	ds := Dates(line, ref)
	if len(ds) != 1 {
		return ls
	}
	rest := strings.TrimSpace(line[:ds[0].Start] + line[ds[0].End:])
	if len(rest) <= 3 {
		return prev
	}
	return ls
}

func lastOf(ds []DateMatch) (DateMatch, bool) {
	if len(ds) == 0 {
		return DateMatch{}, false
	}
	return ds[len(ds)-1], true
}

var trainNoRe = regexp.MustCompile(`(?i)\b(?:train(?:\s+(?:no\.?|number))?|service)\s*:?\s*([A-Z]{0,3}\s?\d{2,5})\b`)

func trains(m Message, text string, fs map[string]string) []Booking {
	b := Booking{}
	from := field(fs, "from", "origin", "departs from", "departure station", "from station")
	to := field(fs, "to", "destination", "arrives at", "arrival station", "to station")
	if from != "" {
		if ps := Places(from); len(ps) > 0 {
			b.From = ps[0]
		} else {
			b.From = Place{Text: from, City: from}
		}
	}
	if to != "" {
		if ps := Places(to); len(ps) > 0 {
			b.To = ps[0]
		} else {
			b.To = Place{Text: to, City: to}
		}
	}
	if b.From.City == "" || b.To.City == "" {
		ps := Cities(text)
		for _, p := range ps {
			if b.From.City == "" {
				b.From = p
			} else if b.To.City == "" && p.City != b.From.City {
				b.To = p
			}
		}
	}
	dv := field(fs, "departure", "departs", "outbound", "date", "depart", "travel date")
	d, ok := firstDate(dv, m.Date)
	if !ok {
		d, ok = firstDate(text, m.Date)
	}
	if !ok || b.From.City == "" || b.To.City == "" {
		return nil
	}
	b.Start, b.HasTime = d.Time, d.HasTime
	if !d.HasTime {
		if ts := Times(dv); len(ts) > 0 {
			b.Start, b.HasTime = withTime(d, &ts[0])
		}
	}
	if av := field(fs, "arrival", "arrives"); av != "" {
		if ad, ok := firstDate(av, m.Date); ok {
			b.End = ad.Time
		} else if ts := Times(av); len(ts) > 0 {
			b.End, _ = withTime(DateMatch{Time: d.Time}, &ts[0])
		}
	}
	if mm := trainNoRe.FindStringSubmatch(text); mm != nil {
		b.Number = strings.ReplaceAll(mm[1], " ", "")
	}
	b.Excerpt = Excerpt(b.From.City+" → "+b.To.City+", "+d.Text, 200)
	out := []Booking{b}
	if rv := field(fs, "return", "inbound", "return journey"); rv != "" {
		if rd, ok := firstDate(rv, m.Date); ok {
			r := Booking{From: b.To, To: b.From, Start: rd.Time, HasTime: rd.HasTime, Excerpt: Excerpt("Return: "+rv, 200)}
			out = append(out, r)
		}
	}
	return out
}

var (
	nightsRe    = regexp.MustCompile(`(?i)\b(\d{1,2})\s+nights?\b`)
	nameAfterRe = regexp.MustCompile(`(?i)\b(?:stay at|booking at|reservation at|welcome to|booked at|table at|confirmed at|reserved at)\s+(?:the\s+)?([A-Z0-9][\w'&.\- ]{1,60}?)(?:\s+(?:is|has|for|on|in|at|this|tonight|tomorrow)\b|[,.!:;\n–—(]|\s+-\s|$)`)
	partyRe     = regexp.MustCompile(`(?i)\b(?:table for|party of|reservation for)\s+(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten)\b|\b(\d{1,2})\s+(?:guests?|people|persons|diners|covers|adults)\b`)
)

var wordNumbers = map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}

func nameAfter(s string) string {
	if mm := nameAfterRe.FindStringSubmatch(s); mm != nil {
		return strings.TrimSpace(mm[1])
	}
	return ""
}

var (
	checkInRe   = regexp.MustCompile(`(?im)\bcheck-?\s?in\b[ \t:]*([^\n]*)`)
	checkOutRe  = regexp.MustCompile(`(?im)\bcheck-?\s?out\b[ \t:]*([^\n]*)`)
	hotelLineRe = regexp.MustCompile(`(?m)^[ \t]*((?:Hotel|Hôtel|Hostel)\s+[A-Z][^\n,]{2,50}|[A-Z][^\n,]{2,50}\s+(?:Hotel|Inn|Suites))[ \t]*$`)
)

// labelLine returns what follows the first label re matches with a date in it.
func labelLine(text string, re *regexp.Regexp) string {
	for _, mm := range re.FindAllStringSubmatch(text, -1) {
		if strings.TrimSpace(mm[1]) != "" && len(Dates(mm[1], time.Time{})) > 0 {
			return mm[1]
		}
	}
	return ""
}

func hotels(m Message, text string, fs map[string]string) []Booking {
	b := Booking{}
	in := field(fs, "check in", "checkin", "arrival", "arrive", "check in date")
	if in == "" {
		in = labelLine(text, checkInRe)
	}
	d, ok := firstDate(in, m.Date)
	if !ok {
		return nil
	}
	b.Start, b.HasTime = d.Time, d.HasTime
	out := field(fs, "check out", "checkout", "departure", "depart", "check out date")
	if out == "" {
		out = labelLine(text, checkOutRe)
	}
	if od, ok := firstDate(out, m.Date); ok {
		b.End = od.Time
	} else if mm := nightsRe.FindStringSubmatch(text); mm != nil {
		n, _ := strconv.Atoi(mm[1])
		b.End = d.Time.AddDate(0, 0, n)
	}
	b.Name = field(fs, "hotel", "property", "accommodation", "hotel name")
	if b.Name == "" {
		b.Name = nameAfter(text)
	}
	if b.Name == "" {
		if mm := hotelLineRe.FindStringSubmatch(m.Body); mm != nil {
			b.Name = strings.TrimSpace(mm[1])
		}
	}
	b.Location = field(fs, "address", "location", "city")
	if b.Location == "" {
		if cs := Cities(text); len(cs) > 0 {
			b.Location = cs[0].City
		}
	}
	if cs := Cities(b.Location); len(cs) > 0 {
		b.To = cs[0]
	}
	b.Excerpt = Excerpt("Check-in: "+in, 200)
	if b.Name == "" && b.Location == "" {
		return nil
	}
	return []Booking{b}
}

var carBrands = []string{"Hertz", "Avis", "Sixt", "Europcar", "Enterprise", "Budget", "National", "Alamo", "Thrifty", "Dollar", "Goldcar"}

func cars(m Message, text string, fs map[string]string) []Booking {
	pick := field(fs, "pick up", "pickup", "pick up date", "pick up time", "collection")
	drop := field(fs, "drop off", "dropoff", "return", "drop off date")
	d, ok := firstDate(pick, m.Date)
	if !ok {
		return nil
	}
	b := Booking{Start: d.Time, HasTime: d.HasTime, Excerpt: Excerpt("Pick-up: "+pick, 200)}
	if ps := Places(pick); len(ps) > 0 {
		b.From = ps[0]
	} else if loc := field(fs, "pick up location", "pickup location", "location", "branch"); loc != "" {
		b.From = placeOf(loc)
	}
	if dd, ok := firstDate(drop, m.Date); ok {
		b.End = dd.Time
	}
	if ps := Places(drop); len(ps) > 0 {
		b.To = ps[0]
	} else if loc := field(fs, "drop off location", "dropoff location", "return location"); loc != "" {
		b.To = placeOf(loc)
	}
	for _, br := range carBrands {
		if strings.Contains(text, br) {
			b.Provider = br
			break
		}
	}
	return []Booking{b}
}

func placeOf(s string) Place {
	if ps := Places(s); len(ps) > 0 {
		return ps[0]
	}
	return Place{Text: s, City: s}
}

func restaurants(m Message, text string, fs map[string]string) []Booking {
	b := Booking{}
	b.Name = field(fs, "restaurant", "venue", "where")
	if b.Name == "" {
		b.Name = nameAfter(text)
	}
	dv := field(fs, "date", "when", "date time", "reservation", "time")
	d, ok := firstDate(dv, m.Date)
	if !ok {
		d, ok = firstDate(text, m.Date)
	}
	if !ok || b.Name == "" {
		return nil
	}
	b.Start, b.HasTime = d.Time, d.HasTime
	if !d.HasTime {
		tv := field(fs, "time")
		if ts := Times(tv); len(ts) > 0 {
			b.Start, b.HasTime = withTime(d, &ts[0])
		}
	}
	if mm := partyRe.FindStringSubmatch(text); mm != nil {
		s := mm[1]
		if s == "" {
			s = mm[2]
		}
		if n, err := strconv.Atoi(s); err == nil {
			b.PartySize = n
		} else {
			b.PartySize = wordNumbers[strings.ToLower(s)]
		}
	}
	if ps := field(fs, "guests", "party size", "people", "covers"); ps != "" && b.PartySize == 0 {
		b.PartySize, _ = strconv.Atoi(strings.Fields(ps)[0])
	}
	b.Location = field(fs, "address", "location")
	b.Excerpt = Excerpt(b.Name+", "+d.Text, 200)
	return []Booking{b}
}

var eventNameRe = regexp.MustCompile(`(?i)(?:tickets? for|you're going to|you are going to|get ready for|booking confirmed:|your tickets:|order confirmed:)\s+(.+?)(?:\s+(?:on|at)\s+|[!\n]|\s+[-–—|]\s|$)`)

func events(m Message, text string, fs map[string]string) []Booking {
	b := Booking{}
	b.Name = field(fs, "event", "show", "performance", "artist", "match")
	if b.Name == "" {
		if mm := eventNameRe.FindStringSubmatch(m.Subject); mm != nil {
			b.Name = strings.TrimSpace(mm[1])
		} else if mm := eventNameRe.FindStringSubmatch(m.Body); mm != nil {
			b.Name = strings.TrimSpace(mm[1])
		}
	}
	b.Location = field(fs, "venue", "location", "where", "place")
	dv := field(fs, "date", "when", "date time", "starts", "start", "doors", "doors open")
	d, ok := firstDate(dv, m.Date)
	if !ok {
		d, ok = firstDate(m.Body, m.Date)
	}
	if !ok || b.Name == "" {
		return nil
	}
	b.Start, b.HasTime = d.Time, d.HasTime
	if !d.HasTime {
		if ts := Times(field(fs, "time", "doors", "doors open", "starts")); len(ts) > 0 {
			b.Start, b.HasTime = withTime(d, &ts[0])
		}
	}
	if b.Location != "" {
		if cs := Cities(b.Location); len(cs) > 0 {
			b.To = cs[0]
		}
	}
	b.Code = firstNonEmptyCode(text, CodeTicket, CodeOrder, CodeConfirmation)
	b.Excerpt = Excerpt(b.Name+", "+d.Text, 200)
	return []Booking{b}
}

func orders(m Message, text string, fs map[string]string) []Booking {
	b := Booking{Start: m.Date, Code: firstCode(text, CodeOrder)}
	b.Items = LineItems(m.Body)
	if tv := field(fs, "order total", "total", "grand total", "amount paid", "total paid", "total charged", "total amount"); tv != "" {
		if ms := Money(tv); len(ms) > 0 {
			t := ms[len(ms)-1]
			b.Total = &t
		}
	}
	if b.Total == nil {
		for _, line := range strings.Split(m.Body, "\n") {
			l := strings.ToLower(line)
			if strings.Contains(l, "total") && !strings.Contains(l, "subtotal") {
				if ms := Money(line); len(ms) > 0 {
					t := ms[len(ms)-1]
					b.Total = &t
				}
			}
		}
	}
	if len(b.Items) == 0 && b.Total == nil {
		return nil
	}
	b.Excerpt = Excerpt(m.Subject, 200)
	return []Booking{b}
}

var (
	skipItemRe = regexp.MustCompile(`(?i)\b(sub-?total|total|shipping|postage|delivery|tax|vat|discount|promo|coupon|tip|fee|paid|balance|saving|refund|card|charged|payment|gift)\b`)
	qtyRe      = regexp.MustCompile(`(?i)\b(?:qty|quantity)\s*[:.]?\s*(\d{1,3})\b|(?:^|\s)(\d{1,3})\s?[x×]\s|\s[x×]\s?(\d{1,3})\b`)
)

// LineItems returns the product lines of an order body: lines that carry a
// price and a product name, skipping totals, shipping, tax and discounts.
func LineItems(body string) []LineItem {
	var out []LineItem
	for _, line := range strings.Split(body, "\n") {
		ms := Money(line)
		if len(ms) == 0 || skipItemRe.MatchString(line) {
			continue
		}
		name := line[:ms[0].Start]
		qty := 1
		if mm := qtyRe.FindStringSubmatchIndex(name); mm != nil {
			for g := 1; g <= 3; g++ {
				if mm[2*g] >= 0 {
					qty, _ = strconv.Atoi(name[mm[2*g]:mm[2*g+1]])
				}
			}
			name = name[:mm[0]] + " " + name[mm[1]:]
		} else if mm := qtyRe.FindStringSubmatch(line[ms[0].End:]); mm != nil {
			for g := 1; g <= 3; g++ {
				if mm[g] != "" {
					qty, _ = strconv.Atoi(mm[g])
				}
			}
		}
		name = strings.Trim(strings.Join(strings.Fields(name), " "), " -–—:.•*|\t")
		letters := 0
		for _, r := range name {
			if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' {
				letters++
			}
		}
		if letters < 3 || len(name) > 120 {
			continue
		}
		if qty < 1 {
			qty = 1
		}
		out = append(out, LineItem{Name: name, Qty: qty, Price: ms[len(ms)-1]})
	}
	return out
}

func firstNonEmptyCode(text string, kinds ...CodeKind) string {
	for _, k := range kinds {
		if c := firstCode(text, k); c != "" {
			return c
		}
	}
	return ""
}
