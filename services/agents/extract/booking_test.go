package extract

import (
	"testing"
	"time"
)

const flightMail = `Dear Alex Morgan,

Thank you for booking with Air Lisboa. Your flight itinerary is below.

Booking reference: X7KQ2P

OUTBOUND
Flight TP 1351  Lisbon (LIS) → London Heathrow (LHR)
Depart: Fri, 11 Dec 2026 07:05   Arrive: Fri, 11 Dec 2026 09:50

RETURN
Flight TP 1366  London Heathrow (LHR) → Lisbon (LIS)
Depart: Mon, 14 Dec 2026 18:40   Arrive: Mon, 14 Dec 2026 21:25

Total paid: €312,40
Questions? Call +351 21 841 3500.`

const hotelMail = `Your stay at The Hoxton, Shoreditch is confirmed

Hi Alex,
Confirmation number: 83920174

Hotel: The Hoxton, Shoreditch
Address: 81 Great Eastern St, London EC2A 3HU
Check-in: Fri, 11 Dec 2026 (from 15:00)
Check-out: Sun, 13 Dec 2026 (until 12:00)
Guests: 1 adult, 2 nights
Total: £378.00

Reservation line: +44 20 7550 1000`

const trainMail = `Your e-ticket for your journey

Booking reference: TL88K2Q1

From: London St Pancras
To: Paris Gare du Nord
Departure: 12 Jan 2027 at 08:31
Arrival: 11:47
Train: ES 9014, Coach 7, Seat 61
Price: £78.00`

const carMail = `Your Sixt car rental is booked

Reservation number: 9844120377
Pick-up: 14 Mar 2027 09:00, Lisbon Airport (LIS)
Drop-off: 18 Mar 2027 17:00, Lisbon Airport (LIS)
Vehicle: VW Golf or similar
Estimated total: €184.20`

const restaurantMail = `Your reservation at Bistro Verde is confirmed

Hi Alex, you're all set! Table for 2 on Saturday, 28 November 2026 at 7:30 PM.

Confirmation #: BV-55120
Address: 12 Rua das Flores, Lisbon
Need to cancel? Call (555) 867-5309.`

const eventMail = `Your tickets for Arctic Monkeys - The Car Tour

Order number: 40021998
Event: Arctic Monkeys - The Car Tour
Venue: O2 Arena, London
Date: Thu, 4 Feb 2027
Doors: 18:30
Tickets: 2 x Standing @ £85.00`

const orderMail = `Thanks for your order, Alex!

Order #112-4432981-5521
Placed on November 16, 2026

Sony WH-1000XM5 Wireless Headphones   Qty: 1   $329.99
2 x USB-C Charging Cable 2m   $25.98
Subtotal: $355.97
Shipping: $0.00
Tax: $28.48
Order total: $384.45`

const newsletterMail = `This week in tech: 10 stories you missed

Our favourite gadgets of the year, the rise of local AI, and why everyone is
talking about passkeys. Read online at example.com. Unsubscribe any time.`

func TestBookingsExtractsEachKind(t *testing.T) {
	sent := time.Date(2026, 11, 16, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		msg   Message
		check func(t *testing.T, bs []Booking)
	}{
		{"round trip gives two legs", Message{From: `"Air Lisboa" <no-reply@airlisboa.example>`, Subject: "Your flight itinerary X7KQ2P", Body: flightMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 2, "legs")
			want(t, bs[0].Kind, KindFlight, "kind")
			want(t, bs[0].Number, "TP1351", "outbound number")
			want(t, bs[0].From.IATA, "LIS", "outbound from")
			want(t, bs[0].To.IATA, "LHR", "outbound to")
			want(t, bs[0].Start, at(2026, 12, 11, 7, 5), "outbound departs")
			want(t, bs[0].End, at(2026, 12, 11, 9, 50), "outbound arrives")
			want(t, bs[0].Code, "X7KQ2P", "code")
			want(t, bs[1].From.IATA, "LHR", "return from")
			want(t, bs[1].To.IATA, "LIS", "return to")
			want(t, bs[1].Start, at(2026, 12, 14, 18, 40), "return departs")
			want(t, bs[0].Provider, "TAP Air Portugal", "carrier")
		}},
		{"hotel stay", Message{From: "The Hoxton <stay@thehoxton.example>", Subject: "Your stay at The Hoxton, Shoreditch is confirmed", Body: hotelMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Kind, KindHotel, "kind")
			want(t, bs[0].Name, "The Hoxton, Shoreditch", "name")
			want(t, bs[0].Start, day(2026, 12, 11), "check-in")
			want(t, bs[0].End, day(2026, 12, 13), "check-out")
			want(t, bs[0].Code, "83920174", "code")
			want(t, bs[0].To.City, "London", "city")
		}},
		{"train journey", Message{From: "Trainline <tickets@trainline.example>", Subject: "Your e-ticket for your journey", Body: trainMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Kind, KindTrain, "kind")
			want(t, bs[0].From.City, "London", "from")
			want(t, bs[0].To.City, "Paris", "to")
			want(t, bs[0].Start, at(2027, 1, 12, 8, 31), "departs")
			want(t, bs[0].End, at(2027, 1, 12, 11, 47), "arrives")
			want(t, bs[0].Number, "ES9014", "train")
			want(t, bs[0].Code, "TL88K2Q1", "code")
		}},
		{"car rental", Message{From: "Sixt <noreply@sixt.example>", Subject: "Your Sixt car rental is booked", Body: carMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Kind, KindCar, "kind")
			want(t, bs[0].Start, at(2027, 3, 14, 9, 0), "pick-up")
			want(t, bs[0].End, at(2027, 3, 18, 17, 0), "drop-off")
			want(t, bs[0].From.IATA, "LIS", "pick-up place")
			want(t, bs[0].Provider, "Sixt", "provider")
			want(t, bs[0].Code, "9844120377", "code")
		}},
		{"restaurant table", Message{From: "OpenTable <no-reply@opentable.example>", Subject: "Your reservation at Bistro Verde is confirmed", Body: restaurantMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Kind, KindRestaurant, "kind")
			want(t, bs[0].Name, "Bistro Verde", "name")
			want(t, bs[0].Start, at(2026, 11, 28, 19, 30), "time")
			want(t, bs[0].PartySize, 2, "party")
			want(t, bs[0].Code, "BV-55120", "code")
			want(t, bs[0].Location, "12 Rua das Flores, Lisbon", "address")
		}},
		{"event tickets", Message{From: "Ticketmaster <tickets@ticketmaster.example>", Subject: "Your tickets for Arctic Monkeys - The Car Tour", Body: eventMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Kind, KindEvent, "kind")
			want(t, bs[0].Name, "Arctic Monkeys - The Car Tour", "name")
			want(t, bs[0].Location, "O2 Arena, London", "venue")
			want(t, bs[0].Start, at(2027, 2, 4, 18, 30), "start")
		}},
		{"order with line items", Message{From: "Amazon.com <auto-confirm@amazon.example>", Subject: "Your Amazon.com order #112-4432981-5521", Body: orderMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Kind, KindOrder, "kind")
			want(t, bs[0].Code, "112-4432981-5521", "order number")
			want(t, len(bs[0].Items), 2, "items")
			want(t, bs[0].Items[0].Name, "Sony WH-1000XM5 Wireless Headphones", "item 0")
			want(t, bs[0].Items[0].Price.String(), "329.99 USD", "item 0 price")
			want(t, bs[0].Items[1].Name, "USB-C Charging Cable 2m", "item 1")
			want(t, bs[0].Items[1].Qty, 2, "item 1 qty")
			want(t, bs[0].Total.String(), "384.45 USD", "total")
		}},
		{"legs under date headings with times beside codes", Message{From: `"British Airways" <ba@ba.example>`, Subject: "Your booking confirmation - British Airways",
			Body: "Booking reference: QX4P7L\n\nSat 12 Dec 2026\nBA 117  LHR 10:30 → JFK 13:25\n\nSun 20 Dec 2026\nBA 112  JFK 18:45 → LHR 06:50\n", Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 2, "legs")
			want(t, bs[0].Start, at(2026, 12, 12, 10, 30), "outbound departs")
			want(t, bs[0].End, at(2026, 12, 12, 13, 25), "outbound arrives")
			want(t, bs[1].Start, at(2026, 12, 20, 18, 45), "return departs")
			want(t, bs[1].End, at(2026, 12, 21, 6, 50), "overnight arrival is next day")
			want(t, bs[1].From.IATA, "JFK", "return from")
			want(t, bs[1].Code, "QX4P7L", "code")
		}},
		{"us itinerary with departs and arrives lines", Message{Subject: "Your United itinerary", Body: "Confirmation Number: H2KX9P\nFlight 1 of 2 UA 901\nDeparts: San Francisco (SFO) Mon, Jan 18, 2027 5:40 PM\nArrives: Frankfurt (FRA) Tue, Jan 19, 2027 1:35 PM\n", Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "legs")
			want(t, bs[0].From.City, "San Francisco", "from")
			want(t, bs[0].To.City, "Frankfurt", "to")
			want(t, bs[0].Start, at(2027, 1, 18, 17, 40), "departs")
			want(t, bs[0].End, at(2027, 1, 19, 13, 35), "arrives")
			want(t, bs[0].Provider, "United", "carrier")
		}},
		{"hotel without colon labels", Message{Subject: "Booking.com: your booking is confirmed", Body: "Booking number: 4021.883.219\nHotel Lisboa Plaza\nCheck-in Thursday, December 3, 2026 (from 2:00 PM)\nCheck-out Saturday, December 5, 2026 (until 12:00 PM)\nLisbon, Portugal\nTotal price € 412", Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Name, "Hotel Lisboa Plaza", "name")
			want(t, bs[0].Code, "4021.883.219", "code")
			want(t, bs[0].Start, day(2026, 12, 3), "check-in")
			want(t, bs[0].End, day(2026, 12, 5), "check-out")
			want(t, bs[0].Location, "Lisbon", "city")
		}},
		{"newsletter is no booking", Message{From: "Tech Weekly <news@techweekly.example>", Subject: "This week in tech", Body: newsletterMail, Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 0, "bookings")
		}},
		{"flight mail without a date is no booking", Message{Subject: "Your flight", Body: "Flight BA 117 from London (LHR) to New York (JFK). Booking reference: ABC123", Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 0, "bookings")
		}},
		{"cancellation is marked", Message{Subject: "Your reservation at Bistro Verde has been cancelled", Body: "Your reservation at Bistro Verde for Saturday, 28 November 2026 at 7:30 PM, table for 2, has been cancelled.", Date: sent}, func(t *testing.T, bs []Booking) {
			want(t, len(bs), 1, "bookings")
			want(t, bs[0].Cancelled, true, "cancelled")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, Bookings(tt.msg)) })
	}
}

func want[T comparable](t *testing.T, got, exp T, what string) {
	t.Helper()
	if got != exp {
		t.Fatalf("%s = %v, want %v", what, got, exp)
	}
}

func TestLineItemsSkipTotalsAndFees(t *testing.T) {
	body := "Organic Coffee Beans 1kg x2 €31,80\nDelivery fee €3,99\nDiscount -€5,00\nGrand total €30,79"
	items := LineItems(body)
	if len(items) != 1 || items[0].Name != "Organic Coffee Beans 1kg" || items[0].Qty != 2 || items[0].Price.String() != "31.80 EUR" {
		t.Fatalf("LineItems = %+v", items)
	}
}
