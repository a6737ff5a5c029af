package llm

import (
	"regexp"
	"strings"
)

var (
	reCard     = regexp.MustCompile(`\b(?:\d[ -]?){12,18}\d\b`)
	reSSN      = regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b`)
	rePassword = regexp.MustCompile(`(?i)\b(password|passcode|passwd|pwd|pin)(\s*(?:is|:|=)\s*)\S+`)
	reOTP      = regexp.MustCompile(`(?i)\b((?:verification|security|one[- ]time|login|sign[- ]in|confirmation|access|2fa|otp)\s*(?:code|pin|password)?(?:\s*(?:is|:))?\s*)([A-Z0-9]{4,8})\b`)
	reCodeNum  = regexp.MustCompile(`(?i)\b(code\s*(?:is|:)?\s*)(\d{4,8})\b`)
)

// Redact removes secrets from text before it leaves the box: payment card
// numbers (Luhn-valid), SSN-like national ids (US SSN, UK NI number),
// passwords and PINs given in the text, and one-time codes.
func Redact(s string) string {
	s = reCard.ReplaceAllStringFunc(s, func(m string) string {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, m)
		if len(digits) >= 13 && len(digits) <= 19 && luhn(digits) {
			return "[card]"
		}
		return m
	})
	s = reSSN.ReplaceAllString(s, "[id]")
	s = rePassword.ReplaceAllString(s, "${1}${2}[secret]")
	s = reOTP.ReplaceAllStringFunc(s, func(m string) string {
		sub := reOTP.FindStringSubmatch(m)
		if !strings.ContainsAny(sub[2], "0123456789") {
			return m // a word, not a code
		}
		return sub[1] + "[code]"
	})
	s = reCodeNum.ReplaceAllString(s, "${1}[code]")
	return s
}

func luhn(d string) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}
