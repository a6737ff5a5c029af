package extract

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Amount is a money amount found in text, in hundredths of the currency unit.
type Amount struct {
	Start, End int
	Text       string
	Cents      int64  // value × 100
	Currency   string // ISO 4217 code
}

// String formats the amount as "1299.99 USD".
func (a Amount) String() string {
	return fmt.Sprintf("%d.%02d %s", a.Cents/100, a.Cents%100, a.Currency)
}

var currencySymbols = map[string]string{
	"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "C$": "CAD", "CA$": "CAD",
	"A$": "AUD", "AU$": "AUD", "CHF": "CHF", "Fr.": "CHF", "kr": "SEK", "zł": "PLN", "₹": "INR",
}

const currencyCodes = `USD|EUR|GBP|CHF|JPY|CAD|AUD|NZD|SEK|NOK|DKK|PLN|CZK|INR|SGD|HKD|MXN|BRL`

// number: 1,299.99 | 1.299,99 | 1 299,99 | 12.50 | 12,50 | 12
const numRe = `(\d{1,3}(?:[,.\x{00A0} ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)`

var (
	currencyCodeRe = regexp.MustCompile(`^(?:` + currencyCodes + `)$`)
	moneyPrefixRe  = regexp.MustCompile(`(US\$|CA\$|AU\$|C\$|A\$|\$|€|£|¥|₹|\b(?:` + currencyCodes + `)\b)\s?` + numRe + `\b`)
	moneySuffixRe  = regexp.MustCompile(`\b` + numRe + `\s?(€|£|\$|zł|kr\b|\b(?:` + currencyCodes + `)\b)`)
)

// Money returns every amount with an explicit currency (symbol or ISO code) in
// text, in order. Bare numbers are never taken for money.
func Money(text string) []Amount {
	var out []Amount
	taken := func(s, e int) bool {
		for _, a := range out {
			if s < a.End && e > a.Start {
				return true
			}
		}
		return false
	}
	for _, m := range moneyPrefixRe.FindAllStringSubmatchIndex(text, -1) {
		cur := normCurrency(text[m[2]:m[3]])
		cents, ok := parseNumber(text[m[4]:m[5]])
		if !ok || cur == "" {
			continue
		}
		out = append(out, Amount{Start: m[0], End: m[1], Text: text[m[0]:m[1]], Cents: cents, Currency: cur})
	}
	for _, m := range moneySuffixRe.FindAllStringSubmatchIndex(text, -1) {
		if taken(m[0], m[1]) {
			continue
		}
		cur := normCurrency(text[m[4]:m[5]])
		cents, ok := parseNumber(text[m[2]:m[3]])
		if !ok || cur == "" {
			continue
		}
		out = append(out, Amount{Start: m[0], End: m[1], Text: text[m[0]:m[1]], Cents: cents, Currency: cur})
	}
	sortAmounts(out)
	return out
}

func sortAmounts(a []Amount) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j].Start < a[j-1].Start; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func normCurrency(s string) string {
	if c, ok := currencySymbols[s]; ok {
		return c
	}
	u := strings.ToUpper(s)
	if currencyCodeRe.MatchString(u) {
		return u
	}
	return ""
}

// parseNumber reads a number written with either ',' or '.' as the decimal
// separator: a final separator followed by one or two digits is decimal, any
// other separator groups thousands.
func parseNumber(s string) (int64, bool) {
	s = strings.ReplaceAll(s, "\u00a0", " ")
	intPart, frac := s, ""
	if i := strings.LastIndexAny(s, ".,"); i >= 0 && len(s)-i-1 <= 2 {
		intPart, frac = s[:i], s[i+1:]
	}
	intPart = strings.NewReplacer(",", "", ".", "", " ", "").Replace(intPart)
	if intPart == "" {
		intPart = "0"
	}
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, false
	}
	var f int64
	switch len(frac) {
	case 1:
		v, _ := strconv.Atoi(frac)
		f = int64(v) * 10
	case 2:
		v, _ := strconv.Atoi(frac)
		f = int64(v)
	}
	return n*100 + f, true
}
