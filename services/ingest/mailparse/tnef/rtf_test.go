package tnef

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

// specExample is the compressed example of MS-OXRTFCP section 4.1.
var specExample = []byte{0x2d, 0, 0, 0, 0x2b, 0, 0, 0, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7, 0xa7,
	0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a, 0xf3, 0x20, 0x68, 0x65,
	0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d, 0x0a, 0x80, 0x0f, 0xa0}

func TestDecompressRTF(t *testing.T) {
	long := `{\rtf1\ansi\ansicpg1252 ` + strings.Repeat("lots of text ", 200) + `}`
	tests := []struct {
		name    string
		in      []byte
		limit   int
		want    string
		wantErr error
	}{
		{name: "the specification's example decompresses", in: specExample, limit: 1 << 20, want: "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"},
		{name: "our own encoding round-trips", in: CompressRTF(long), limit: 1 << 20, want: long},
		{name: "output stops at the limit", in: CompressRTF(long), limit: 100, want: long[:100]},
		{name: "uncompressed MELA data is returned as is", in: append([]byte{0x10, 0, 0, 0, 4, 0, 0, 0, 0x4d, 0x45, 0x4c, 0x41, 0, 0, 0, 0}, "{\\rtf1}"...), limit: 1 << 20, want: "{\\rt"},
		{name: "short header is malformed", in: specExample[:10], limit: 1 << 20, wantErr: ErrMalformed},
		{name: "unknown compression type is malformed", in: append(append([]byte{}, specExample[:8]...), make([]byte, 8)...), limit: 1 << 20, wantErr: ErrMalformed},
		{name: "reference cut in half is malformed", in: specExample[:18], limit: 1 << 20, wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decompressRTF(tc.in, tc.limit)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRTFText(t *testing.T) {
	tests := []struct {
		name     string
		rtf      string
		want     string
		wantHTML bool
	}{
		{name: "plain RTF gives its text with paragraphs",
			rtf:  `{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\colortbl;\red0\green0\blue0;}\pard Hello\par Caf\'e9 \u8364?5\par}`,
			want: "Hello\nCafé €5\n"},
		{name: "ignorable destinations are skipped", rtf: `{\rtf1{\*\generator Riched20;}{\*\unknown x}visible}`, want: "visible"},
		{name: "escaped braces and backslashes are text", rtf: `{\rtf1 a\{b\}c\\d}`, want: `a{b}c\d`},
		{name: "encapsulated HTML is recovered without the RTF-only parts", wantHTML: true,
			rtf:  `{\rtf1\ansi\fromhtml1 {\*\htmltag19 <html>}{\*\htmltag34 <p>}\htmlrtf {\pard\htmlrtf0 Hi <there>\htmlrtf \par}\htmlrtf0{\*\htmltag42 </p></html>}}`,
			want: "<html><p>Hi <there></p></html>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, html := rtfText([]byte(tc.rtf), charmap.Windows1252, 1<<20)
			if got != tc.want || html != tc.wantHTML {
				t.Fatalf("got %q (html %v), want %q (html %v)", got, html, tc.want, tc.wantHTML)
			}
		})
	}
}

func TestCompressedRTFBodyIsUsedWhenThereIsNoOther(t *testing.T) {
	var b Builder
	b.Attr(levelMessage, 0x00069003, PropList(BinaryProp(0x1009, CompressRTF(`{\rtf1\ansi\ansicpg1252\pard Meeting at noon\par}`))))
	m, err := Decode(b.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasRTF || m.Body != "Meeting at noon" {
		t.Fatalf("Body = %q (rtf %v)", m.Body, m.HasRTF)
	}
	var broken Builder
	broken.Attr(levelMessage, 0x00069003, PropList(BinaryProp(0x1009, specExample[:12])))
	m, err = Decode(broken.Bytes(), Limits{})
	if err != nil || m.Body != "" || !strings.Contains(strings.Join(m.Warnings, "|"), "RTF body") {
		t.Fatalf("broken RTF: body %q warnings %v err %v", m.Body, m.Warnings, err)
	}
}

func FuzzRTF(f *testing.F) {
	f.Add(specExample)
	f.Add(CompressRTF(`{\rtf1\ansi\fromhtml1 {\*\htmltag19 <html>}\htmlrtf x\htmlrtf0 y}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, err := decompressRTF(data, 1<<16)
		if err != nil {
			return
		}
		if len(raw) > 1<<16 {
			t.Fatalf("output %d bytes over the limit", len(raw))
		}
		rtfText(raw, charmap.Windows1252, 1<<16)
		rtfText(data, charmap.Windows1252, 1<<16)
	})
}
