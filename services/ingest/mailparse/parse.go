// Package mailparse normalizes raw RFC 5322 messages into Message records and
// streams raw messages out of mbox files, single .eml files and zips of .eml
// files. Broken input yields a usable Message with warnings or a typed
// *ParseError; it never panics.
package mailparse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jhillyerd/enmime/v2"
	"golang.org/x/text/encoding/charmap"
)

// DefaultMaxSize is the default cap on one raw message (25 MB).
const DefaultMaxSize = 25 << 20

// Sentinel errors wrapped by *ParseError; test with errors.Is.
var (
	// ErrTooLarge means the raw message exceeds the configured size cap.
	ErrTooLarge = errors.New("message exceeds size cap")
	// ErrEmpty means the raw message has no bytes at all.
	ErrEmpty = errors.New("empty message")
	// ErrMalformed means the message could not be parsed into any usable record.
	ErrMalformed = errors.New("malformed message")
	// ErrPanic means the parser panicked; the panic was recovered.
	ErrPanic = errors.New("parser panic")
)

// ParseError is the typed error Parse returns when a message cannot yield a
// usable record. Kind is one of the sentinel errors above.
type ParseError struct {
	Kind   error
	Detail string
	Size   int64
}

// Error implements error.
func (e *ParseError) Error() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

// Unwrap lets errors.Is match the sentinel Kind.
func (e *ParseError) Unwrap() error { return e.Kind }

// Address is one mailbox from an address header.
type Address struct {
	Name string `json:"name,omitempty"`
	Addr string `json:"addr"`
}

// Attachment is metadata about one attachment or inline part; content is not kept.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Inline      bool   `json:"inline,omitempty"`
	ContentID   string `json:"content_id,omitempty"`
}

// DateSource says which header or fallback produced Message.Date.
type DateSource string

// Date sources, from most to least trustworthy.
const (
	DateFromHeader   DateSource = "date"
	DateFromReceived DateSource = "received"
	DateFromFallback DateSource = "fallback" // Options.FallbackDate (mbox From line, Gmail internalDate)
	DateMissing      DateSource = "missing"
)

// Message is one normalized email.
type Message struct {
	MessageID            string       // without angle brackets
	MessageIDSynthesized bool         // true when MessageID was derived from ContentHash
	ContentHash          string       // hex sha256 over normalized content; equal for the same mail from any source
	Subject              string       // decoded, UTF-8
	From                 Address      // first From mailbox
	To                   []Address    // decoded To list
	Cc                   []Address    // decoded Cc list
	Date                 time.Time    // UTC; zero when DateSource is DateMissing
	DateSource           DateSource   // which header or fallback gave Date
	InReplyTo            string       // first In-Reply-To id, without brackets
	References           []string     // References ids, without brackets
	Text                 string       // readable text: text/plain preferred, else HTML converted
	TextFromHTML         bool         // Text was converted from HTML
	HTML                 string       // raw HTML body, unsanitized; the UI must sanitize it
	Attachments          []Attachment // attachment and inline part metadata
	Size                 int64        // raw size in bytes
	Warnings             []string     // non-fatal problems met while parsing
}

// Options tune Parse. The zero value uses the defaults.
type Options struct {
	MaxSize      int64     // raw size cap; 0 means DefaultMaxSize, <0 means none
	MaxHTMLBytes int       // HTML input read for text conversion; 0 means 4 MB
	MaxTextBytes int       // cap on Message.Text and Message.HTML; 0 means 1 MB
	FallbackDate time.Time // used when neither Date nor Received headers parse
}

func (o Options) withDefaults() Options {
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxHTMLBytes == 0 {
		o.MaxHTMLBytes = 4 << 20
	}
	if o.MaxTextBytes == 0 {
		o.MaxTextBytes = 1 << 20
	}
	return o
}

// Parse normalizes one raw message. It returns a *ParseError (never a panic)
// when no usable record can be produced; otherwise problems are listed in
// Message.Warnings. It is safe for concurrent use.
func Parse(raw []byte, opts Options) (msg *Message, err error) {
	opts = opts.withDefaults()
	defer func() {
		if r := recover(); r != nil {
			msg = nil
			err = &ParseError{Kind: ErrPanic, Detail: fmt.Sprint(r), Size: int64(len(raw))}
		}
	}()
	size := int64(len(raw))
	if opts.MaxSize > 0 && size > opts.MaxSize {
		return nil, &ParseError{Kind: ErrTooLarge, Detail: fmt.Sprintf("%d bytes > cap %d", size, opts.MaxSize), Size: size}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, &ParseError{Kind: ErrEmpty, Size: size}
	}
	parser := enmime.NewParser(
		enmime.SkipMalformedParts(true),
		enmime.MultipartWOBoundaryAsSinglePart(true),
		enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy),
		enmime.DisableTextConversion(true),
		enmime.StripMediaTypeInvalidCharacters(true),
		// Statistical charset detection costs ~65% of parse time; trust the
		// declared charset and repair undeclared 8-bit text in cleanBody.
		enmime.DisableCharacterDetection(true),
	)
	env, perr := parser.ReadEnvelope(bytes.NewReader(raw))
	if perr != nil {
		return nil, &ParseError{Kind: ErrMalformed, Detail: perr.Error(), Size: size}
	}
	m := &Message{Size: size}
	for _, e := range env.Errors {
		if e.Name == enmime.ErrorPlainTextFromHTML {
			continue
		}
		m.addWarning(e.Error())
	}
	if len(env.GetHeaderKeys()) == 0 {
		m.addWarning("no headers")
	}

	m.Subject = m.cleanHeader("subject", env.GetHeader("Subject"))
	if from := m.addresses(env, "From"); len(from) > 0 {
		m.From = from[0]
	} else if s := m.addresses(env, "Sender"); len(s) > 0 {
		m.From = s[0]
	} else {
		m.addWarning("missing From")
	}
	m.To = m.addresses(env, "To")
	m.Cc = m.addresses(env, "Cc")
	m.InReplyTo = firstID(env.GetHeader("In-Reply-To"))
	m.References = allIDs(env.GetHeader("References"))
	m.setDate(env, opts.FallbackDate)

	attachments, inlines := env.Attachments, env.Inlines
	text := env.Text
	if text == "" && env.HTML == "" && looksLikeText(env.Root) {
		// A single-part body with a broken or misleading Content-Type that
		// enmime filed as an attachment: read it as text.
		text = string(env.Root.Content)
		attachments, inlines = dropPart(attachments, env.Root), dropPart(inlines, env.Root)
		m.addWarning("body without usable content type read as text")
	}
	m.HTML = m.cleanBody("html", env.HTML, opts.MaxTextBytes)
	if strings.TrimSpace(text) == "" && env.HTML != "" {
		conv, truncated := HTMLToText(m.cleanBody("html", env.HTML, opts.MaxHTMLBytes), opts.MaxHTMLBytes, opts.MaxTextBytes)
		if truncated {
			m.addWarning("html to text conversion truncated")
		}
		text = conv
		m.TextFromHTML = true
	}
	m.Text = m.cleanBody("text", normalizeNewlines(text), opts.MaxTextBytes)

	for _, p := range attachments {
		if isTNEF(p) {
			if tm := m.expandTNEF(p); tm != nil {
				if t := m.tnefText(tm, opts); strings.TrimSpace(m.Text) == "" && t != "" {
					m.Text, m.TextFromHTML = t, tm.Body == ""
				}
				continue
			}
		}
		m.Attachments = append(m.Attachments, attachmentOf(p, false))
	}
	for _, p := range inlines {
		m.Attachments = append(m.Attachments, attachmentOf(p, true))
	}
	for _, p := range env.OtherParts {
		if p.FileName != "" || p.ContentID != "" {
			m.Attachments = append(m.Attachments, attachmentOf(p, true))
		}
	}

	if m.Text == "" && m.HTML == "" && len(m.Attachments) == 0 {
		m.addWarning("empty body")
	}

	m.ContentHash = contentHash(m)
	if id := firstID(env.GetHeader("Message-ID")); id != "" && utf8.ValidString(id) {
		m.MessageID = id
	} else {
		if env.GetHeader("Message-ID") != "" {
			m.addWarning("unusable Message-ID header")
		}
		m.MessageID = m.ContentHash[:32] + "@synthesized.ownyou"
		m.MessageIDSynthesized = true
	}
	return m, nil
}

func (m *Message) addWarning(w string) {
	if len(m.Warnings) < 50 {
		m.Warnings = append(m.Warnings, w)
	}
}

// cleanHeader guarantees valid UTF-8 for a decoded header value: raw 8-bit
// bytes are read as Windows-1252, the common mislabelled charset.
func (m *Message) cleanHeader(name, v string) string {
	if !utf8.ValidString(v) {
		m.addWarning(fmt.Sprintf("%s: invalid UTF-8, decoded as windows-1252", name))
		if dec, err := charmap.Windows1252.NewDecoder().String(v); err == nil {
			v = dec
		} else {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
	}
	v = strings.Join(strings.Fields(v), " ")
	return truncateUTF8(v, 2000)
}

func (m *Message) cleanBody(name, v string, max int) string {
	if !utf8.ValidString(v) {
		// Undeclared or mislabelled 8-bit text is most often Windows-1252.
		m.addWarning(name + ": invalid UTF-8, decoded as windows-1252")
		if dec, err := charmap.Windows1252.NewDecoder().String(v); err == nil && utf8.ValidString(dec) {
			v = dec
		} else {
			v = strings.ToValidUTF8(v, "\uFFFD")
		}
	}
	if max > 0 && len(v) > max {
		m.addWarning(name + ": truncated")
		v = truncateUTF8(v, max)
	}
	return v
}

func (m *Message) addresses(env *enmime.Envelope, key string) []Address {
	raw := env.GetHeader(key)
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	list, err := env.AddressList(key)
	if err != nil || len(list) == 0 {
		// Fall back to pulling anything that looks like an address.
		var out []Address
		for _, a := range looseAddrRe.FindAllString(raw, 20) {
			out = append(out, Address{Addr: strings.ToLower(a)})
		}
		m.addWarning(fmt.Sprintf("%s: unparseable address list", strings.ToLower(key)))
		return out
	}
	out := make([]Address, 0, len(list))
	for _, a := range list {
		out = append(out, Address{
			Name: m.cleanHeader(strings.ToLower(key)+" name", a.Name),
			Addr: strings.ToLower(strings.ToValidUTF8(a.Address, "")),
		})
	}
	return out
}

var looseAddrRe = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+`)

// dateLayouts are tried after net/mail.ParseDate for sloppy Date headers.
var dateLayouts = []string{
	time.RFC1123Z, time.RFC1123, time.RFC822Z, time.RFC822, time.ANSIC, time.UnixDate, time.RFC3339,
	"Mon, 2 Jan 2006 15:04:05 -0700 (MST)", "2 Jan 2006 15:04:05 -0700", "Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04 -0700", "Mon, 02 Jan 2006 15:04:05", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05",
	"Mon Jan 2 15:04:05 2006 -0700", "Mon, 2 Jan 2006 15:04:05 MST",
}

// ParseDateLoose parses a date header value with net/mail's parser first,
// then common sloppy layouts. It reports false when nothing matched.
func ParseDateLoose(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t.UTC(), true
	}
	v = strings.Join(strings.Fields(v), " ")
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), true
		}
	}
	// Drop a trailing comment such as "(PST)" and retry.
	if i := strings.LastIndex(v, "("); i > 0 {
		return ParseDateLoose(v[:i])
	}
	return time.Time{}, false
}

func (m *Message) setDate(env *enmime.Envelope, fallback time.Time) {
	if v := env.GetHeader("Date"); v != "" {
		if t, ok := ParseDateLoose(v); ok && t.Year() > 1970 {
			m.Date, m.DateSource = t, DateFromHeader
			return
		}
		m.addWarning("unparseable Date header")
	}
	for _, rcv := range env.GetHeaderValues("Received") {
		if i := strings.LastIndex(rcv, ";"); i >= 0 {
			if t, ok := ParseDateLoose(rcv[i+1:]); ok {
				m.Date, m.DateSource = t, DateFromReceived
				return
			}
		}
	}
	if !fallback.IsZero() {
		m.Date, m.DateSource = fallback.UTC(), DateFromFallback
		return
	}
	m.DateSource = DateMissing
	m.addWarning("no usable date")
}

func attachmentOf(p *enmime.Part, inline bool) Attachment {
	name := strings.ToValidUTF8(p.FileName, "\uFFFD")
	if name == "" && p.ContentType == "application/ms-tnef" {
		name = "winmail.dat"
	}
	return Attachment{
		Name:        truncateUTF8(name, 512),
		ContentType: strings.ToLower(strings.ToValidUTF8(p.ContentType, "")),
		Size:        int64(len(p.Content)),
		Inline:      inline,
		ContentID:   strings.ToValidUTF8(p.ContentID, ""),
	}
}

// looksLikeText reports whether a childless root part without a file name
// holds UTF-8 text rather than binary data.
func looksLikeText(root *enmime.Part) bool {
	if root == nil || root.FirstChild != nil || root.FileName != "" || len(root.Content) == 0 {
		return false
	}
	ct := root.ContentType
	if ct != "" && !strings.HasPrefix(ct, "text/") && !strings.HasPrefix(ct, "multipart/") {
		return false
	}
	sample := root.Content
	if len(sample) > 4096 {
		sample = sample[:4096]
	}
	return bytes.IndexByte(sample, 0) < 0
}

func dropPart(parts []*enmime.Part, p *enmime.Part) []*enmime.Part {
	out := parts[:0:0]
	for _, q := range parts {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

var idRe = regexp.MustCompile(`<([^<>\s]+)>`)

func firstID(v string) string {
	if ids := allIDs(v); len(ids) > 0 {
		return ids[0]
	}
	v = strings.TrimSpace(v)
	if v != "" && !strings.ContainsAny(v, " \t<>") {
		return v
	}
	return ""
}

func allIDs(v string) []string {
	var out []string
	for _, m := range idRe.FindAllStringSubmatch(v, 100) {
		out = append(out, m[1])
	}
	return out
}

func normalizeNewlines(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// contentHash is computed over fields that survive any transport: Gmail raw,
// IMAP and Takeout mbox copies of one mail hash equal even though their
// trace headers (X-Gmail-Labels, Received, ...) differ.
func contentHash(m *Message) string {
	h := sha256.New()
	w := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	w(m.From.Addr)
	for _, l := range [][]Address{m.To, m.Cc} {
		addrs := make([]string, 0, len(l))
		for _, a := range l {
			addrs = append(addrs, a.Addr)
		}
		sort.Strings(addrs)
		w(strings.Join(addrs, ","))
	}
	if m.DateSource == DateFromHeader {
		w(m.Date.UTC().Format(time.RFC3339))
	} else {
		w("")
	}
	w(m.Subject)
	w(strings.Join(strings.Fields(m.Text), " "))
	for _, a := range m.Attachments {
		w(fmt.Sprintf("%s|%s|%d", a.Name, a.ContentType, a.Size))
	}
	return hex.EncodeToString(h.Sum(nil))
}
