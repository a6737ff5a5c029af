package embed

// ChunkConfig cuts long texts into overlapping windows of word pieces.
type ChunkConfig struct {
	// Overlap is how many word pieces consecutive windows share.
	Overlap int
	// MaxChunks bounds the windows per text; later text is not embedded
	// (it stays searchable through full-text search).
	MaxChunks int
}

// Chunks tokenizes text into at most cfg.MaxChunks encodings of at most
// MaxLen tokens each ([CLS]/[SEP] included); consecutive windows overlap by
// cfg.Overlap pieces. Empty text yields one [CLS][SEP] encoding. The second
// result reports whether text was cut off after the last chunk.
func (t *Tokenizer) Chunks(text string, cfg ChunkConfig) ([]Encoding, bool) {
	pieces := t.PieceIDs(text)
	window := t.maxLen - 2
	if len(pieces) <= window {
		return []Encoding{t.wrap(pieces)}, false
	}
	overlap := min(max(cfg.Overlap, 0), window/2)
	stride := window - overlap
	maxChunks := max(cfg.MaxChunks, 1)
	var out []Encoding
	for start := 0; ; start += stride {
		end := min(start+window, len(pieces))
		if len(out) == maxChunks {
			return out, true
		}
		out = append(out, t.wrap(pieces[start:end]))
		if end == len(pieces) {
			return out, false
		}
	}
}

// Span is one chunk of a text: its encoding and the character (rune) range
// [Start, End) of the text it covers.
type Span struct {
	Enc        Encoding
	Start, End int
}

// ChunkSpans is Chunks that also reports each window's character range in
// text (whole words; windows overlap like Chunks). Text without any token
// yields no spans.
func (t *Tokenizer) ChunkSpans(text string, cfg ChunkConfig) ([]Span, bool) {
	var pieces []int64
	var starts, ends []int // per piece: rune range of its source word
	runeIdx := 0
	wordStart, byteStart := -1, 0
	flush := func(byteEnd, runeEnd int) {
		if wordStart < 0 {
			return
		}
		for _, id := range t.PieceIDs(text[byteStart:byteEnd]) {
			pieces = append(pieces, id)
			starts = append(starts, wordStart)
			ends = append(ends, runeEnd)
		}
		wordStart = -1
	}
	for i, r := range text {
		if isWhitespace(r) {
			flush(i, runeIdx)
		} else if wordStart < 0 {
			wordStart, byteStart = runeIdx, i
		}
		runeIdx++
	}
	flush(len(text), runeIdx)
	if len(pieces) == 0 {
		return nil, false
	}
	window := t.maxLen - 2
	overlap := min(max(cfg.Overlap, 0), window/2)
	stride := window - overlap
	maxChunks := max(cfg.MaxChunks, 1)
	var out []Span
	for start := 0; ; start += stride {
		end := min(start+window, len(pieces))
		if len(out) == maxChunks {
			return out, true
		}
		out = append(out, Span{Enc: t.wrap(pieces[start:end]), Start: starts[start], End: ends[end-1]})
		if end == len(pieces) {
			return out, false
		}
	}
}
