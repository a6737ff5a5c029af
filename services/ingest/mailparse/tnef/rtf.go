package tnef

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// rtfDict is the initial dictionary of MS-OXRTFCP compressed RTF.
const rtfDict = "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"

const (
	rtfCompressed   = 0x75465A4C // "LZFu"
	rtfUncompressed = 0x414C454D // "MELA"
)

// decompressRTF expands PR_RTF_COMPRESSED (MS-OXRTFCP), producing at most
// limit bytes.
func decompressRTF(b []byte, limit int) ([]byte, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("%w: compressed RTF header truncated", ErrMalformed)
	}
	compSize := binary.LittleEndian.Uint32(b)
	rawSize := binary.LittleEndian.Uint32(b[4:])
	typ := binary.LittleEndian.Uint32(b[8:])
	data := b[16:]
	if int64(compSize) >= 12 && int64(compSize)-12 < int64(len(data)) {
		data = data[:compSize-12]
	}
	switch typ {
	case rtfUncompressed:
		return data[:min(len(data), limit, int(min(rawSize, uint32(1<<31-1))))], nil
	case rtfCompressed:
	default:
		return nil, fmt.Errorf("%w: unknown compressed RTF type 0x%08X", ErrMalformed, typ)
	}
	var dict [4096]byte
	copy(dict[:], rtfDict)
	w := len(rtfDict)
	// RAWSIZE is untrusted: a token expands at most 17 bytes per 2 read.
	out := make([]byte, 0, min(int(min(rawSize, 1<<24)), 9*len(data)+64, limit))
	put := func(c byte) {
		out = append(out, c)
		dict[w] = c
		w = (w + 1) % len(dict)
	}
	for i := 0; i < len(data); {
		ctrl := data[i]
		i++
		for bit := 0; bit < 8 && i < len(data); bit++ {
			if len(out) >= limit {
				return out, nil
			}
			if ctrl&(1<<bit) == 0 {
				put(data[i])
				i++
				continue
			}
			if i+1 >= len(data) {
				return nil, fmt.Errorf("%w: compressed RTF reference truncated", ErrMalformed)
			}
			ref := int(data[i])<<8 | int(data[i+1])
			i += 2
			off, n := ref>>4, ref&0xF+2
			if off == w {
				return out, nil // end of stream
			}
			for k := 0; k < n; k++ {
				put(dict[(off+k)%len(dict)])
			}
		}
	}
	return out, nil
}

// rtfText extracts readable content from an RTF document. When the RTF
// encapsulates HTML (\fromhtml) it returns that HTML and html=true.
func rtfText(rtf []byte, cp *charmap.Charmap, limit int) (text string, html bool) {
	type state struct {
		skip    bool // inside an ignored destination
		htmlrtf bool // inside \htmlrtf … \htmlrtf0 (RTF-only content of encapsulated HTML)
		uc      int  // fallback characters after \u
	}
	st := state{uc: 1}
	var stack []state
	var out strings.Builder
	var pending []byte // 8-bit text awaiting code page decoding
	flush := func() {
		if len(pending) > 0 {
			s, _ := cp.NewDecoder().Bytes(pending)
			out.Write(s)
			pending = pending[:0]
		}
	}
	emit := func(s string) {
		flush()
		out.WriteString(s)
	}
	fromHTML := bytes.Contains(rtf[:min(len(rtf), 1024)], []byte(`\fromhtml`))
	skipFallback := 0
	ignorableNext := false
	for i := 0; i < len(rtf) && out.Len()+len(pending) < limit; {
		c := rtf[i]
		switch {
		case c == '{':
			stack = append(stack, st)
			if len(stack) > 512 {
				return out.String(), fromHTML // absurd nesting: stop with what we have
			}
			i++
		case c == '}':
			if n := len(stack); n > 0 {
				st = stack[n-1]
				stack = stack[:n-1]
			}
			i++
		case c == '\r' || c == '\n':
			i++
		case c == '\\' && i+1 < len(rtf):
			i++
			d := rtf[i]
			if !isLetter(d) {
				i++
				switch d {
				case '\'':
					if i+2 <= len(rtf) {
						if v, err := strconv.ParseUint(string(rtf[i:i+2]), 16, 8); err == nil && !st.skip && !st.htmlrtf {
							if skipFallback > 0 {
								skipFallback--
							} else {
								pending = append(pending, byte(v))
							}
						}
						i += 2
					}
				case '*':
					ignorableNext = true
				case '\\', '{', '}':
					if !st.skip && !st.htmlrtf {
						emit(string(d))
					}
				case '~':
					if !st.skip && !st.htmlrtf {
						emit("\u00a0")
					}
				}
				continue
			}
			j := i
			for j < len(rtf) && isLetter(rtf[j]) && j-i < 32 {
				j++
			}
			word := string(rtf[i:j])
			k := j
			if k < len(rtf) && (rtf[k] == '-' || isDigit(rtf[k])) {
				k++
				for k < len(rtf) && isDigit(rtf[k]) && k-j < 12 {
					k++
				}
			}
			param, hasParam := 0, k > j
			if hasParam {
				param, _ = strconv.Atoi(string(rtf[j:k]))
			}
			if k < len(rtf) && rtf[k] == ' ' {
				k++
			}
			i = k
			wasIgnorable := ignorableNext
			ignorableNext = false
			switch word {
			case "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer", "listtable", "listoverridetable", "rsidtbl", "generator", "xmlnstbl", "themedata", "colorschememapping", "latentstyles", "datastore", "fldinst":
				st.skip = true
			case "htmltag":
				if fromHTML {
					st.skip, st.htmlrtf = false, false
				}
			case "htmlrtf":
				st.htmlrtf = !hasParam || param != 0
			case "par", "line":
				if !st.skip && !st.htmlrtf && !fromHTML {
					emit("\n")
				}
			case "tab":
				if !st.skip && !st.htmlrtf && !fromHTML {
					emit("\t")
				}
			case "uc":
				st.uc = max(0, min(param, 8))
			case "u":
				if !st.skip && !st.htmlrtf {
					emit(string(utf16.Decode([]uint16{uint16(int16(param))})))
					skipFallback = st.uc
				}
			case "ansicpg":
				cp = codepage(uint32(max(param, 0)))
			default:
				if wasIgnorable {
					st.skip = true
				}
			}
		default:
			if !st.skip && !st.htmlrtf {
				if skipFallback > 0 {
					skipFallback--
				} else {
					pending = append(pending, c)
				}
			}
			i++
		}
	}
	flush()
	return out.String(), fromHTML
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
