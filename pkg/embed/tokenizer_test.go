package embed

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ownyou/home/pkg/models"
)

// sharedVocab returns the all-MiniLM-L6-v2 vocab.txt from the shared data dir.
func sharedVocab(t testing.TB) string {
	t.Helper()
	dir, err := models.SharedDir()
	if err != nil {
		t.Fatalf("shared dir: %v", err)
	}
	return filepath.Join(dir, "models", "all-MiniLM-L6-v2", "vocab.txt")
}

func loadTokenizer(t testing.TB, maxLen int) *Tokenizer {
	t.Helper()
	tok, err := LoadVocab(sharedVocab(t), maxLen)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEncodeMatchesReferenceTokenizer checks every golden case produced by the
// HuggingFace Rust tokenizer (testdata/gen_tokenizer_golden.js).
func TestEncodeMatchesReferenceTokenizer(t *testing.T) {
	raw, err := os.ReadFile("testdata/tokenizer_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text   string   `json:"text"`
		Tokens []string `json:"tokens"`
		IDs    []int64  `json:"ids"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("golden file has only %d cases", len(cases))
	}
	tok := loadTokenizer(t, 1<<20)
	for _, c := range cases {
		enc := tok.Encode(c.Text)
		if !slices.Equal(enc.IDs, c.IDs) {
			t.Errorf("Encode(%q):\n got %v %v\nwant %v %v", c.Text, enc.IDs, tok.Tokens(c.Text), c.IDs, c.Tokens)
		}
		for i := range enc.IDs {
			if enc.AttentionMask[i] != 1 || enc.TypeIDs[i] != 0 {
				t.Fatalf("Encode(%q): mask/type at %d = %d/%d", c.Text, i, enc.AttentionMask[i], enc.TypeIDs[i])
			}
		}
	}
}

func TestEncodeTruncatesToMaxLenKeepingSep(t *testing.T) {
	tok := loadTokenizer(t, 8)
	tests := []struct {
		name      string
		text      string
		wantLen   int
		truncated bool
	}{
		{"short input is not truncated", "hello world", 4, false},
		{"exactly six pieces fit", "a b c d e f", 8, false},
		{"seven pieces are cut to six", "a b c d e f g", 8, true},
		{"long mail is cut", strings.Repeat("word ", 100), 8, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := tok.Encode(tc.text)
			if len(enc.IDs) != tc.wantLen || enc.Truncated != tc.truncated {
				t.Fatalf("len=%d truncated=%v, want %d %v", len(enc.IDs), enc.Truncated, tc.wantLen, tc.truncated)
			}
			if enc.IDs[0] != 101 || enc.IDs[len(enc.IDs)-1] != 102 {
				t.Fatalf("ids %v do not start with [CLS] and end with [SEP]", enc.IDs)
			}
		})
	}
}

func TestSpecialTokenTextIsNotASpecialToken(t *testing.T) {
	tok := loadTokenizer(t, 64)
	enc := tok.Encode("[SEP]")
	// '[' 'sep' ']' — never the 102 control token in the middle.
	for _, id := range enc.IDs[1 : len(enc.IDs)-1] {
		if id == 102 {
			t.Fatalf("literal [SEP] became the special token: %v", enc.IDs)
		}
	}
}

func TestReadVocabRejectsVocabWithoutSpecials(t *testing.T) {
	_, err := ReadVocab(strings.NewReader("hello\nworld\n"), 128)
	if err == nil || !strings.Contains(err.Error(), "[PAD]") {
		t.Fatalf("err = %v, want missing [PAD]", err)
	}
}

func TestNormalizeASCIIFastPathMatchesTheUnicodePath(t *testing.T) {
	var all []byte
	for c := 0; c < 0x80; c++ {
		all = append(all, byte(c))
	}
	cases := []string{string(all), "Hello,\tWORLD!\r\n\x0bVT\x0cFF\x1fUS\x7fDEL", "", "   ", "URL: https://Example.COM/a?b=C&d=e#F"}
	for _, c := range cases {
		fast, ok := normalizeASCII(c)
		if !ok {
			t.Fatalf("%q: fast path refused ASCII", c)
		}
		if slow := normalizeUnicode(c); fast != slow {
			t.Errorf("%q: fast %q, unicode %q", c, fast, slow)
		}
	}
	if _, ok := normalizeASCII("café"); ok {
		t.Error("fast path took non-ASCII text")
	}
}

func BenchmarkEncodeShortASCII(b *testing.B) {
	tok := loadTokenizer(b, 128)
	text := "invoice meeting travel flight hotel order shipped account password reset newsletter weekly offer sale"
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(text)
	}
}
