package extract

import (
	"testing"
	"unicode/utf8"
)

func TestExcerptCutsOnWordOrCharacterBoundaries(t *testing.T) {
	cases := []struct {
		name, in string
		n        int
		want     string
	}{
		{"short text is kept, spaces collapsed", "Your  flight\nitinerary", 40, "Your flight itinerary"},
		{"long text is cut at a word", "Your stay at The Hoxton, Shoreditch is confirmed", 20, "Your stay at The…"},
		{"a long word is cut between characters, never inside one", "Überbuchungsbestätigungsnachricht", 11, "Überbuchun…"},
		{"CJK without spaces stays valid UTF-8", "東京行きのフライトの予約確認", 10, "東京行…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Excerpt(c.in, c.n)
			if got != c.want || !utf8.ValidString(got) {
				t.Errorf("Excerpt(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
			}
		})
	}
}
