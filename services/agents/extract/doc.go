// Package extract finds facts in the plain text of a mail: dates and times
// (relative to the mail's own date), money amounts, airports and cities,
// flight numbers, confirmation codes, order line items and whole booking
// records (flight, train, hotel, car, restaurant, event, order).
//
// Every function is pure and safe for concurrent use. Nothing is invented:
// a field the text does not state is left at its zero value.
package extract
