package local

import (
	"strings"
	"testing"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
)

func TestCleanTextDropsFootersLinksAndAddressesButKeepsTheMessage(t *testing.T) {
	body := "Your Harvest Bowl is ready at the 14th St location.\n" +
		"View this email in your browser: https://click.example.com/abc?utm=1\n" +
		"You are receiving this because you signed up. Unsubscribe | Privacy Policy\n" +
		"© 2026 Sweetgreen Inc. All rights reserved. Questions? help@sweetgreen.com"
	got := cleanText(body)
	if !strings.Contains(got, "Harvest Bowl is ready") {
		t.Errorf("message dropped: %q", got)
	}
	for _, gone := range []string{"browser", "https", "Unsubscribe", "Privacy", "rights reserved", "@"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q left in %q", gone, got)
		}
	}
}

func TestCleanTextDropsBusinessDaysDeliveryPhrase(t *testing.T) {
	if got := cleanText("We will dispatch within 2 business days."); strings.Contains(got, "business") {
		t.Errorf("delivery time left as a topic word: %q", got)
	}
}

func TestSenderWordsKeepsNameAndTradeDomainButNotMailProviders(t *testing.T) {
	for _, tc := range []struct{ from, want, not string }{
		{"Greenfield Vets <reminders@greenfieldvets.com>", "Greenfield Vets greenfieldvets", ""},
		{"Marta <marta.k.1987@gmail.com>", "Marta", "gmail"},
		{"orders@wool-shop.co.uk", "wool-shop", "orders"},
	} {
		got := senderWords(tc.from)
		if got != tc.want || (tc.not != "" && strings.Contains(got, tc.not)) {
			t.Errorf("senderWords(%q) = %q, want %q", tc.from, got, tc.want)
		}
	}
}

func TestContentTokensDropGenericTransactionalWordsAndNumbers(t *testing.T) {
	got := " " + strings.Join(contentTokens("Your order BA117 is confirmed: 2 x merino yarn, total 42.50"), " ") + " "
	for _, gone := range []string{" order ", " ba117 ", " confirmed ", " total ", "42"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q left in %q", gone, got)
		}
	}
	if !strings.Contains(got, " merino yarn ") {
		t.Errorf("what was bought dropped: %q", got)
	}
}

func TestPetRuleAssertsPetsAndRulesOutHumanMedicine(t *testing.T) {
	sig := detectSignals(core.Email{Subject: "Appointment reminder for Bella", Text: "Bella is due her annual vaccination with the vet."})
	if !sig.topics["pets"] || !sig.topics["pet services"] {
		t.Errorf("pet rule did not fire: %+v", sig.topics)
	}
	if sig.topics["medical health"] || !sig.ruledOut["medical health"] {
		t.Errorf("a vet's vaccination asserted as human medicine: topics %v, ruled out %v", sig.topics, sig.ruledOut)
	}
	human := detectSignals(core.Email{Subject: "Your flu vaccination", Text: "Book your vaccination at the pharmacy."})
	if !human.topics["medical health"] || human.ruledOut["medical health"] {
		t.Errorf("human vaccination not medical: topics %v, ruled out %v", human.topics, human.ruledOut)
	}
}

func TestLexiconTermsMatchWholeWordsPhrasesAndPrefixes(t *testing.T) {
	tt := newTokenText(tokenize("Booked: a table for four. New paperback books by the author."))
	for _, tc := range []struct {
		t    term
		want bool
	}{
		{term{words: []string{"book"}, prefix: true}, true}, // book* → booked, books
		{term{words: []string{"book"}}, false},              // whole word only
		{term{words: []string{"table", "for"}}, true},       // phrase
		{term{words: []string{"for", "table"}}, false},      // order matters
		{term{words: []string{"auth"}}, false},              // no partial word
		{term{words: []string{"auth"}, prefix: true}, true}, // unless a prefix
		{term{words: []string{"paperback", "book"}, prefix: true}, true},
	} {
		if got := tt.has(tc.t); got != tc.want {
			t.Errorf("has(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

func TestLexiconLoadsEveryClassifiedSection(t *testing.T) {
	lex, err := loadLexicon()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range classifiedSections {
		if len(lex[s]) == 0 {
			t.Errorf("no lexicon entries for %s", s)
		}
	}
	if len(lex.terms(taxonomy.SectionInterests, "Travel")) == 0 {
		t.Error("interest Travel does not fall back to the content entry")
	}
}
