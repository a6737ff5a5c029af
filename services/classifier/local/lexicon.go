package local

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ownyou/home/pkg/taxonomy"
)

// lexiconJSON holds the hand-written zero-shot descriptions: per section and
// Tier-1, words and short phrases typical of emails about it (see the file's
// _doc and the README, "Local backend").
//
//go:embed lexicon.json
var lexiconJSON []byte

// term is one lexicon entry: consecutive words, the last one matching any
// ending when prefix is set ("book*").
type term struct {
	words  []string
	prefix bool
}

// lexicon maps a section to lower-cased Tier-1 names to their terms.
type lexicon map[taxonomy.Section]map[string][]term

// terms returns a Tier-1's terms in section s. Interests without an entry of
// their own use the content entry of the same name (Travel, Pets, …).
func (l lexicon) terms(s taxonomy.Section, name string) []term {
	name = strings.ToLower(name)
	if ts, ok := l[s][name]; ok {
		return ts
	}
	if s == taxonomy.SectionInterests {
		return l[taxonomy.SectionContent][name]
	}
	return nil
}

// loadLexicon parses the embedded lexicon.
func loadLexicon() (lexicon, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(lexiconJSON, &raw); err != nil {
		return nil, fmt.Errorf("parse lexicon: %w", err)
	}
	lex := lexicon{}
	for _, s := range classifiedSections {
		var m map[string][]string
		if b, ok := raw[string(s)]; ok {
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("parse lexicon %s: %w", s, err)
			}
		}
		lex[s] = map[string][]term{}
		for name, phrases := range m {
			for _, p := range phrases {
				t := term{prefix: strings.HasSuffix(p, "*")}
				t.words = tokenize(strings.TrimSuffix(p, "*"))
				if len(t.words) == 0 {
					return nil, fmt.Errorf("lexicon %s %q: empty term %q", s, name, p)
				}
				lex[s][strings.ToLower(name)] = append(lex[s][strings.ToLower(name)], t)
			}
		}
	}
	return lex, nil
}

// text renders the terms as words for a category description.
func termsText(ts []term) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(strings.Join(t.words, " "))
		b.WriteString(". ")
	}
	return b.String()
}

// tokenText is an email's tokens prepared for term matching.
type tokenText struct {
	set    map[string]bool
	joined string // " tok tok … " for phrase and prefix matching
}

func newTokenText(toks []string) tokenText {
	t := tokenText{set: make(map[string]bool, len(toks))}
	for _, w := range toks {
		t.set[w] = true
	}
	t.joined = " " + strings.Join(toks, " ") + " "
	return t
}

func (tt tokenText) has(t term) bool {
	if len(t.words) == 1 && !t.prefix {
		return tt.set[t.words[0]]
	}
	p := " " + strings.Join(t.words, " ")
	if !t.prefix {
		p += " "
	}
	return strings.Contains(tt.joined, p)
}

// lexHits counts the distinct terms of ts found in the email.
func lexHits(tt tokenText, ts []term) int {
	n := 0
	for _, t := range ts {
		if tt.has(t) {
			n++
		}
	}
	return n
}
