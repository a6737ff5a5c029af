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
