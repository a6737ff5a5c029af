package embed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Special token strings of a BERT uncased vocabulary.
const (
	tokPAD = "[PAD]"
	tokUNK = "[UNK]"
	tokCLS = "[CLS]"
	tokSEP = "[SEP]"
)

// maxInputCharsPerWord is the WordPiece limit above which a word becomes [UNK]
// (tokenizer.json "max_input_chars_per_word").
const maxInputCharsPerWord = 100

// ErrVocab reports a vocabulary file that cannot serve as a BERT WordPiece vocabulary.
var ErrVocab = errors.New("invalid vocabulary")

// Tokenizer is a BERT uncased WordPiece tokenizer that reproduces the
// HuggingFace BertNormalizer(clean_text, handle_chinese_chars, lowercase,
// strip_accents) + BertPreTokenizer + WordPiece("##", 100) + [CLS]/[SEP]
// pipeline. Literal special-token strings in the input (e.g. "[SEP]") are
// tokenized as ordinary text, so mail content cannot inject control tokens.
// A Tokenizer is immutable and safe for concurrent use.
type Tokenizer struct {
	vocab              map[string]int32
	pad, unk, cls, sep int32
	maxLen             int
}

// Encoding is one tokenized input: ids including [CLS] and [SEP], an
// attention mask of ones and all-zero token type ids, all the same length.
type Encoding struct {
	IDs           []int64
	AttentionMask []int64
	TypeIDs       []int64
	// Truncated reports whether word pieces were dropped to fit MaxLen.
	Truncated bool
}

// LoadVocab reads a vocab.txt (one token per line, id = line number) and
// returns a Tokenizer that truncates encodings to maxLen tokens (including
// [CLS] and [SEP]); maxLen must be at least 2.
func LoadVocab(path string, maxLen int) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load vocab: %w", err)
	}
	defer f.Close()
	t, err := ReadVocab(f, maxLen)
	if err != nil {
		return nil, fmt.Errorf("load vocab %s: %w", path, err)
	}
	return t, nil
}

// ReadVocab is LoadVocab over a reader.
func ReadVocab(r io.Reader, maxLen int) (*Tokenizer, error) {
	if maxLen < 2 {
		return nil, fmt.Errorf("%w: max length %d < 2", ErrVocab, maxLen)
	}
	vocab := make(map[string]int32, 32768)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), 1<<20)
	var id int32
	for sc.Scan() {
		tok := strings.TrimRight(sc.Text(), "\r")
		if _, dup := vocab[tok]; !dup {
			vocab[tok] = id
		}
		id++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read vocab: %w", err)
	}
	t := &Tokenizer{vocab: vocab, maxLen: maxLen}
	for _, sp := range []struct {
		name string
		dst  *int32
	}{{tokPAD, &t.pad}, {tokUNK, &t.unk}, {tokCLS, &t.cls}, {tokSEP, &t.sep}} {
		v, ok := vocab[sp.name]
		if !ok {
			return nil, fmt.Errorf("%w: no %s token", ErrVocab, sp.name)
		}
		*sp.dst = v
	}
	return t, nil
}

// VocabSize returns the number of distinct tokens in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// MaxLen returns the maximum encoding length, [CLS] and [SEP] included.
func (t *Tokenizer) MaxLen() int { return t.maxLen }

// PadID returns the id used to pad batches.
func (t *Tokenizer) PadID() int64 { return int64(t.pad) }

// Encode tokenizes text into [CLS] pieces… [SEP], truncated to MaxLen.
func (t *Tokenizer) Encode(text string) Encoding {
	ids := t.appendPieceIDs(make([]int64, 0, 64), text, -1)
	return t.wrap(ids)
}

// PieceIDs returns the WordPiece ids of text without [CLS]/[SEP] and without
// truncation; used by the chunker to cut long mails into windows.
func (t *Tokenizer) PieceIDs(text string) []int64 {
	return t.appendPieceIDs(nil, text, -1)
}

// Wrap turns word-piece ids into an Encoding: [CLS] ids [SEP], truncated to MaxLen.
func (t *Tokenizer) Wrap(pieces []int64) Encoding { return t.wrap(pieces) }

func (t *Tokenizer) wrap(pieces []int64) Encoding {
	truncated := false
	if len(pieces) > t.maxLen-2 {
		pieces = pieces[:t.maxLen-2]
		truncated = true
	}
	n := len(pieces) + 2
	buf := make([]int64, 3*n)
	ids, mask, types := buf[:n:n], buf[n:2*n:2*n], buf[2*n:]
	ids[0] = int64(t.cls)
	copy(ids[1:], pieces)
	ids[n-1] = int64(t.sep)
	for i := range mask {
		mask[i] = 1
	}
	return Encoding{IDs: ids, AttentionMask: mask, TypeIDs: types, Truncated: truncated}
}

// Tokens returns the WordPiece strings of text (no [CLS]/[SEP]); for tests and debugging.
func (t *Tokenizer) Tokens(text string) []string {
	inv := make(map[int32]string, len(t.vocab))
	for k, v := range t.vocab {
		inv[v] = k
	}
	var out []string
	for _, id := range t.PieceIDs(text) {
		out = append(out, inv[int32(id)])
	}
	return out
}

// appendPieceIDs normalizes, pre-tokenizes and WordPiece-encodes text.
// limit < 0 means no limit on the number of pieces.
func (t *Tokenizer) appendPieceIDs(dst []int64, text string, limit int) []int64 {
	norm := normalize(text)
	var buf []byte // "##"-prefixed candidates, reused across words
	wordStart := -1
	flush := func(end int) {
		if wordStart >= 0 {
			dst, buf = t.wordPiece(dst, norm[wordStart:end], buf)
			wordStart = -1
		}
	}
	for i, r := range norm {
		switch {
		case r == ' ':
			flush(i)
		case isBertPunct(r):
			flush(i)
			wordStart = i
			flush(i + utf8.RuneLen(r))
		default:
			if wordStart < 0 {
				wordStart = i
			}
		}
		if limit >= 0 && len(dst) >= limit {
			return dst[:limit]
		}
	}
	flush(len(norm))
	if limit >= 0 && len(dst) > limit {
		dst = dst[:limit]
	}
	return dst
}

// wordPiece appends the greedy longest-match-first pieces of word, or [UNK]
// when the word is too long or cannot be covered by the vocabulary. buf is
// scratch space for continuation candidates; the grown buffer is returned.
func (t *Tokenizer) wordPiece(dst []int64, word string, buf []byte) ([]int64, []byte) {
	if utf8.RuneCountInString(word) > maxInputCharsPerWord {
		return append(dst, int64(t.unk)), buf
	}
	start := len(dst)
	for begin := 0; begin < len(word); {
		end := len(word)
		found := int32(-1)
		for end > begin {
			var id int32
			var ok bool
			if begin == 0 {
				id, ok = t.vocab[word[:end]]
			} else {
				buf = append(append(buf[:0], "##"...), word[begin:end]...)
				id, ok = t.vocab[string(buf)] // no allocation for a map lookup
			}
			if ok {
				found = id
				break
			}
			// step back one rune
			_, size := utf8.DecodeLastRuneInString(word[begin:end])
			end -= size
		}
		if found < 0 {
			return append(dst[:start], int64(t.unk)), buf
		}
		dst = append(dst, int64(found))
		begin = end
	}
	return dst, buf
}

// normalize applies BertNormalizer: drop NUL, U+FFFD and control/format
// characters, map whitespace to ' ', pad CJK ideographs with spaces, strip
// accents (NFD, drop Mn) and lower-case.
func normalize(text string) string {
	if ascii, ok := normalizeASCII(text); ok {
		return ascii
	}
	return normalizeUnicode(text)
}

func normalizeUnicode(text string) string {
	var b strings.Builder
	b.Grow(len(text) + 8)
	for _, r := range text {
		switch {
		case r == 0 || r == utf8.RuneError || isControl(r):
			continue
		case isWhitespace(r):
			b.WriteByte(' ')
		case isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	b.Reset()
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// normalizeASCII is normalize for pure ASCII text, where NFD changes
// nothing, there are no accents or CJK, and lower-casing is A–Z only.
// ok is false when text has a non-ASCII byte.
func normalizeASCII(text string) (string, bool) {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 0x80:
			return "", false
		case c == '\t' || c == '\n' || c == '\r' || c == ' ':
			out = append(out, ' ')
		case c < 0x20 || c == 0x7f:
			// Cc controls are dropped, VT and FF too (control before whitespace, as in the reference)
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		default:
			out = append(out, c)
		}
	}
	return string(out), true
}

// isWhitespace follows the reference: \t \n \r and Unicode White_Space.
func isWhitespace(r rune) bool {
	switch r {
	case '\t', '\n', '\r', ' ':
		return true
	}
	return unicode.IsSpace(r)
}

// isControl is the reference's "other" category (Cc, Cf, Cs, Co, Cn) minus \t \n \r.
func isControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Cs, unicode.Co) {
		return true
	}
	// Cn: unassigned code points.
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C)
}

// isBertPunct is ASCII punctuation or any Unicode P* character.
func isBertPunct(r rune) bool {
	if (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126) {
		return true
	}
	return unicode.IsPunct(r)
}

// isCJK reports CJK Unified Ideographs (and extensions/compatibility blocks),
// the ranges BERT isolates as single-character words.
func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
