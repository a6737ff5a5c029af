package mailparse

import (
	"bytes"
	"io"
	"strings"
	"unicode"

	"golang.org/x/net/html"
)

// skipElements are elements whose content is never readable text.
var skipElements = map[string]bool{
	"script": true, "style": true, "head": true, "title": true, "noscript": true,
	"template": true, "svg": true, "object": true, "iframe": true,
}

// blockElements end the current line when they open or close.
var blockElements = map[string]bool{
	"p": true, "div": true, "br": true, "tr": true, "li": true, "ul": true, "ol": true,
	"table": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"blockquote": true, "pre": true, "hr": true, "section": true, "article": true,
	"header": true, "footer": true, "dd": true, "dt": true, "dl": true,
}

// HTMLToText converts HTML to readable plain text without script, style or
// other non-text content. It reads at most maxIn bytes of input and produces
// at most maxOut bytes of output, so an HTML bomb costs bounded time and
// memory; truncated reports whether either bound was hit. It is safe for
// concurrent use.
func HTMLToText(src string, maxIn, maxOut int) (text string, truncated bool) {
	if maxIn > 0 && len(src) > maxIn {
		src = src[:maxIn]
		truncated = true
	}
	z := html.NewTokenizer(strings.NewReader(src))
	var out bytes.Buffer
	skipDepth := 0
	pendingSpace := false
	lineStart := true
	blankLines := 0
	newline := func() {
		if lineStart {
			blankLines++
			if blankLines > 1 {
				return
			}
		} else {
			blankLines = 0
		}
		out.WriteByte('\n')
		lineStart = true
		pendingSpace = false
	}
	for {
		if maxOut > 0 && out.Len() >= maxOut {
			truncated = true
			break
		}
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF && z.Err() != nil {
				truncated = true
			}
			return finishText(out.String(), maxOut), truncated
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if skipElements[tag] && tt == html.StartTagToken {
				skipDepth++
				continue
			}
			if skipDepth == 0 && blockElements[tag] {
				newline()
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if skipElements[tag] {
				if skipDepth > 0 {
					skipDepth--
				}
				continue
			}
			if skipDepth == 0 && blockElements[tag] {
				newline()
			}
		case html.TextToken:
			if skipDepth > 0 {
				continue
			}
			for _, r := range string(z.Text()) {
				if unicode.IsSpace(r) {
					if !lineStart {
						pendingSpace = true
					}
					continue
				}
				if pendingSpace {
					out.WriteByte(' ')
					pendingSpace = false
				}
				out.WriteRune(r)
				lineStart = false
				blankLines = 0
			}
		}
	}
	return finishText(out.String(), maxOut), truncated
}

func finishText(s string, maxOut int) string {
	if maxOut > 0 && len(s) > maxOut {
		s = truncateUTF8(s, maxOut)
	}
	return strings.TrimSpace(s)
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
