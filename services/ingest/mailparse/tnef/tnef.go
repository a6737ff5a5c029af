// Package tnef reads Microsoft's Transport Neutral Encapsulation Format
// (MS-OXTNEF, the winmail.dat attachment Outlook and Exchange send) far
// enough to list the attachments inside it (name, type, size) and recover
// the message body, whether stored as plain text, HTML or compressed RTF
// (MS-OXRTFCP; RTF that encapsulates HTML gives that HTML, other RTF its
// text). Decoding is bounded by Limits and never panics:
// malformed input yields an error wrapping ErrMalformed. It is pure and safe
// for concurrent use.
package tnef

import (
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"path"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// Signature is the little-endian magic number every TNEF stream starts with.
const Signature = 0x223E9F78

// ErrNotTNEF means the data does not start with the TNEF signature.
var ErrNotTNEF = errors.New("not a TNEF stream")

// ErrMalformed means the stream is truncated or its records are inconsistent.
var ErrMalformed = errors.New("malformed TNEF stream")

// ErrTooLarge means the stream exceeds Limits.
var ErrTooLarge = errors.New("TNEF stream exceeds limits")

// Attribute levels.
const (
	levelMessage    = 0x01
	levelAttachment = 0x02
)

// Attribute ids (the low 16 bits of the 32-bit attribute id; the high 16
// bits are the attribute's type).
const (
	attBody           = 0x800C
	attAttachData     = 0x800F
	attAttachTitle    = 0x8010
	attMessageClass   = 0x8008
	attSubject        = 0x8004
	attAttachRendData = 0x9002
	attMsgProps       = 0x9003
	attAttachment     = 0x9005
	attOemCodepage    = 0x9007
	attTransportName  = 0x9001
)

// MAPI property ids and types read from attMsgProps / attAttachment.
const (
	prBody             = 0x1000
	prBodyHTML         = 0x1013 // PR_BODY_HTML (string) and PR_HTML (binary)
	prAttachDataObj    = 0x3701
	prAttachFilename   = 0x3704
	prAttachLongName   = 0x3707
	prAttachMimeTag    = 0x370E
	prDisplayName      = 0x3001
	ptString8          = 0x001E
	ptUnicode          = 0x001F
	ptBinary           = 0x0102
	ptObject           = 0x000D
	mvFlag             = 0x1000
	namedPropThreshold = 0x8000
)

// Limits bound what Decode accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes       int // stream size; default 64 MiB
	MaxAttributes  int // attribute records; default 10,000
	MaxAttachments int // attachments listed; default 1,000
	MaxProps       int // MAPI properties per property list; default 10,000
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 64 << 20
	}
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = 10000
	}
	if l.MaxAttachments <= 0 {
		l.MaxAttachments = 1000
	}
	if l.MaxProps <= 0 {
		l.MaxProps = 10000
	}
	return l
}

// Attachment is metadata about one file inside the stream; its bytes are not kept.
type Attachment struct {
	Name        string
	ContentType string // from PR_ATTACH_MIME_TAG, else guessed from the name's extension
	Size        int64
}

// Message is what Decode recovered.
type Message struct {
	MessageClass string // e.g. IPM.Note
	Subject      string
	Body         string // plain text body (attBody or PR_BODY), UTF-8
	BodyHTML     string // PR_BODY_HTML / PR_HTML, UTF-8
	HasRTF       bool   // a compressed RTF body was present (used only when there is no other body)
	Attachments  []Attachment
	Warnings     []string // non-fatal problems, e.g. checksum mismatches
}

// Decode reads a TNEF stream. It returns an error wrapping ErrNotTNEF,
// ErrMalformed or ErrTooLarge when nothing trustworthy can be read.
func Decode(data []byte, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	if len(data) < 6 || binary.LittleEndian.Uint32(data) != Signature {
		return nil, ErrNotTNEF
	}
	d := &decoder{lim: lim, msg: &Message{}, cp: charmap.Windows1252}
	r := reader{b: data[6:]} // signature + legacy key
	for n := 0; r.len() > 0; n++ {
		if n >= lim.MaxAttributes {
			return nil, fmt.Errorf("%w: more than %d attributes", ErrTooLarge, lim.MaxAttributes)
		}
		off := len(data) - r.len()
		level, ok1 := r.u8()
		id, ok2 := r.u32()
		size, ok3 := r.u32()
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%w: truncated attribute header at offset %d", ErrMalformed, off)
		}
		val, ok := r.bytes(int64(size))
		if !ok {
			return nil, fmt.Errorf("%w: attribute 0x%08X at offset %d claims %d bytes, %d left", ErrMalformed, id, off, size, r.len())
		}
		sum, ok := r.u16()
		if !ok {
			return nil, fmt.Errorf("%w: attribute 0x%08X at offset %d has no checksum", ErrMalformed, id, off)
		}
		if checksum(val) != sum {
			d.warn(fmt.Sprintf("attribute 0x%08X: checksum mismatch", id))
		}
		if level != levelMessage && level != levelAttachment {
			return nil, fmt.Errorf("%w: unknown attribute level %d at offset %d", ErrMalformed, level, off)
		}
		if err := d.attribute(level, id&0xFFFF, val); err != nil {
			return nil, err
		}
	}
	d.finish()
	return d.msg, nil
}

func checksum(b []byte) uint16 {
	var s uint16
	for _, c := range b {
		s += uint16(c)
	}
	return s
}

type decoder struct {
	lim Limits
	msg *Message
	cp  *charmap.Charmap
	cur *attachment // attachment being read; attAttachRendData starts one
	all []*attachment
	rtf []byte // PR_RTF_COMPRESSED
}

// maxRTFBytes bounds a decompressed RTF body and the text taken from it.
const maxRTFBytes = 8 << 20

type attachment struct {
	title, longName, fileName, mimeTag string
	size                               int64
	hasData                            bool
}

func (d *decoder) warn(w string) {
	if len(d.msg.Warnings) < 20 {
		d.msg.Warnings = append(d.msg.Warnings, w)
	}
}

func (d *decoder) attribute(level byte, id uint32, val []byte) error {
	if level == levelMessage {
		switch id {
		case attOemCodepage:
			if len(val) >= 4 {
				d.cp = codepage(binary.LittleEndian.Uint32(val))
			}
		case attMessageClass:
			d.msg.MessageClass = d.ansi(val)
		case attSubject:
			d.msg.Subject = d.ansi(val)
		case attBody:
			d.msg.Body = d.ansi(val)
		case attMsgProps:
			return d.props(val, nil)
		}
		return nil
	}
	if id == attAttachRendData {
		if len(d.all) >= d.lim.MaxAttachments {
			return fmt.Errorf("%w: more than %d attachments", ErrTooLarge, d.lim.MaxAttachments)
		}
		d.cur = &attachment{}
		d.all = append(d.all, d.cur)
		return nil
	}
	if d.cur == nil {
		// Attachment attributes before any attAttachRendData: tolerate them
		// as one attachment, as Outlook's own reader does.
		d.warn("attachment attribute before attAttachRendData")
		d.cur = &attachment{}
		d.all = append(d.all, d.cur)
	}
	switch id {
	case attAttachTitle:
		d.cur.title = d.ansi(val)
	case attTransportName:
		if d.cur.fileName == "" {
			d.cur.fileName = d.ansi(val)
		}
	case attAttachData:
		d.cur.size, d.cur.hasData = int64(len(val)), true
	case attAttachment:
		return d.props(val, d.cur)
	}
	return nil
}

// props reads a MAPI property list (MS-OXTNEF 2.1.3.4). For the message
// (a == nil) it picks the bodies; for an attachment its names, MIME type
// and embedded data size.
func (d *decoder) props(b []byte, a *attachment) error {
	r := reader{b: b}
	count, ok := r.u32()
	if !ok {
		return fmt.Errorf("%w: truncated property list", ErrMalformed)
	}
	if int64(count) > int64(d.lim.MaxProps) {
		return fmt.Errorf("%w: %d properties > %d", ErrTooLarge, count, d.lim.MaxProps)
	}
	for i := uint32(0); i < count; i++ {
		typ, ok1 := r.u16()
		pid, ok2 := r.u16()
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: truncated property %d", ErrMalformed, i)
		}
		if pid >= namedPropThreshold {
			if _, ok := r.bytes(16); !ok { // property set GUID
				return fmt.Errorf("%w: truncated named property", ErrMalformed)
			}
			kind, ok := r.u32()
			if !ok {
				return fmt.Errorf("%w: truncated named property", ErrMalformed)
			}
			switch kind {
			case 0:
				if _, ok := r.u32(); !ok {
					return fmt.Errorf("%w: truncated named property id", ErrMalformed)
				}
			case 1:
				n, ok := r.u32()
				if !ok || !r.skipPadded(int64(n)) {
					return fmt.Errorf("%w: truncated named property name", ErrMalformed)
				}
			default:
				return fmt.Errorf("%w: unknown named property kind %d", ErrMalformed, kind)
			}
		}
		vals, err := r.values(typ)
		if err != nil {
			return fmt.Errorf("property 0x%04X%04X: %w", pid, typ, err)
		}
		if len(vals) == 0 || typ&mvFlag != 0 {
			continue
		}
		v := vals[0]
		str := func() string {
			switch typ {
			case ptUnicode:
				return utf16le(v)
			case ptString8:
				return d.ansi(v)
			case ptBinary:
				return d.ansi(v) // PR_HTML: bytes in the message's code page
			}
			return ""
		}
		if a == nil {
			switch {
			case pid == prBody && (typ == ptUnicode || typ == ptString8):
				d.msg.Body = str()
			case pid == prBodyHTML && (typ == ptUnicode || typ == ptString8 || typ == ptBinary):
				d.msg.BodyHTML = decodeHTML(v, typ, d)
			case pid == 0x1009 && typ == ptBinary: // PR_RTF_COMPRESSED
				d.msg.HasRTF, d.rtf = true, v
			}
			continue
		}
		switch pid {
		case prAttachLongName:
			a.longName = str()
		case prAttachFilename:
			a.fileName = str()
		case prDisplayName:
			if a.title == "" {
				a.title = str()
			}
		case prAttachMimeTag:
			a.mimeTag = str()
		case prAttachDataObj:
			if typ == ptBinary || typ == ptObject {
				n := int64(len(v))
				if typ == ptObject && n >= 16 {
					n -= 16 // the object's interface GUID precedes its data
				}
				if !a.hasData {
					a.size, a.hasData = n, true
				}
			}
		}
	}
	return nil
}

func decodeHTML(v []byte, typ uint16, d *decoder) string {
	if typ == ptUnicode {
		return utf16le(v)
	}
	s := strings.TrimRight(string(v), "\x00")
	if utf8.ValidString(s) {
		return s
	}
	return d.ansi(v)
}

func (d *decoder) finish() {
	if d.rtf != nil && strings.TrimSpace(d.msg.Body) == "" && strings.TrimSpace(d.msg.BodyHTML) == "" {
		raw, err := decompressRTF(d.rtf, maxRTFBytes)
		if err != nil {
			d.warn("RTF body: " + err.Error())
		} else if text, html := rtfText(raw, d.cp, maxRTFBytes); html {
			d.msg.BodyHTML = text
		} else {
			d.msg.Body = strings.TrimSpace(text)
		}
	}
	for _, a := range d.all {
		name := firstNonEmpty(a.longName, a.title, a.fileName)
		if name == "" && !a.hasData {
			continue // rendering info without a file (e.g. an OLE placeholder)
		}
		name = path.Base(strings.ReplaceAll(name, "\\", "/"))
		if name == "." || name == "/" {
			name = ""
		}
		ct := strings.ToLower(strings.TrimSpace(a.mimeTag))
		if ct == "" {
			ct = mime.TypeByExtension(strings.ToLower(path.Ext(name)))
			if i := strings.IndexByte(ct, ';'); i >= 0 {
				ct = ct[:i]
			}
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		d.msg.Attachments = append(d.msg.Attachments, Attachment{Name: name, ContentType: ct, Size: a.size})
	}
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// ansi decodes a NUL-terminated 8-bit string: UTF-8 when it is valid,
// else the stream's OEM code page.
func (d *decoder) ansi(b []byte) string {
	if i := indexNUL(b); i >= 0 {
		b = b[:i]
	}
	if utf8.Valid(b) {
		return string(b)
	}
	s, err := d.cp.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(s)
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

func utf16le(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// codepage maps a Windows code page number to a decoder; unknown pages
// fall back to Windows-1252.
func codepage(cp uint32) *charmap.Charmap {
	switch cp {
	case 1250:
		return charmap.Windows1250
	case 1251:
		return charmap.Windows1251
	case 1253:
		return charmap.Windows1253
	case 1254:
		return charmap.Windows1254
	case 1255:
		return charmap.Windows1255
	case 1256:
		return charmap.Windows1256
	case 1257:
		return charmap.Windows1257
	case 1258:
		return charmap.Windows1258
	case 437:
		return charmap.CodePage437
	case 850:
		return charmap.CodePage850
	case 28591:
		return charmap.ISO8859_1
	case 28605:
		return charmap.ISO8859_15
	}
	return charmap.Windows1252
}

// reader is a bounds-checked little-endian cursor.
type reader struct{ b []byte }

func (r *reader) len() int { return len(r.b) }

func (r *reader) u8() (byte, bool) {
	if len(r.b) < 1 {
		return 0, false
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v, true
}

func (r *reader) u16() (uint16, bool) {
	if len(r.b) < 2 {
		return 0, false
	}
	v := binary.LittleEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v, true
}

func (r *reader) u32() (uint32, bool) {
	if len(r.b) < 4 {
		return 0, false
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, true
}

func (r *reader) bytes(n int64) ([]byte, bool) {
	if n < 0 || n > int64(len(r.b)) {
		return nil, false
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, true
}

// padded reads n bytes and skips padding to the next 4-byte boundary.
func (r *reader) padded(n int64) ([]byte, bool) {
	v, ok := r.bytes(n)
	if !ok {
		return nil, false
	}
	if pad := (4 - n%4) % 4; pad > 0 {
		if _, ok := r.bytes(min(pad, int64(len(r.b)))); !ok {
			return nil, false
		}
	}
	return v, true
}

func (r *reader) skipPadded(n int64) bool {
	_, ok := r.padded(n)
	return ok
}

// fixedSize is the encoded size of a fixed-length MAPI type (values are
// padded to 4 bytes); 0 means variable-length or unknown.
func fixedSize(t uint16) int64 {
	switch t {
	case 0x0001, 0x0002, 0x0003, 0x0004, 0x000A, 0x000B: // NULL, I2, I4, R4, ERROR, BOOLEAN
		return 4
	case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040: // R8, CURRENCY, APPTIME, I8, SYSTIME
		return 8
	case 0x0048: // CLSID
		return 16
	}
	return 0
}

// values reads one property value (or the values of a multi-valued one).
// Variable-length values are returned; fixed ones are skipped and
// returned as their raw bytes.
func (r *reader) values(typ uint16) ([][]byte, error) {
	base := typ &^ mvFlag
	variable := base == ptString8 || base == ptUnicode || base == ptBinary || base == ptObject
	size := fixedSize(base)
	if !variable && size == 0 {
		return nil, fmt.Errorf("%w: unknown property type 0x%04X", ErrMalformed, typ)
	}
	n := uint32(1)
	if typ&mvFlag != 0 || variable {
		var ok bool
		if n, ok = r.u32(); !ok {
			return nil, fmt.Errorf("%w: truncated value count", ErrMalformed)
		}
		// Every value takes at least 4 bytes: a count beyond that is a lie.
		if int64(n)*4 > int64(r.len()) {
			return nil, fmt.Errorf("%w: %d values in %d bytes", ErrMalformed, n, r.len())
		}
	}
	out := make([][]byte, 0, min(n, 16))
	for i := uint32(0); i < n; i++ {
		if !variable {
			v, ok := r.bytes(size)
			if !ok {
				return nil, fmt.Errorf("%w: truncated value", ErrMalformed)
			}
			if len(out) < 16 {
				out = append(out, v)
			}
			continue
		}
		l, ok := r.u32()
		if !ok {
			return nil, fmt.Errorf("%w: truncated value length", ErrMalformed)
		}
		v, ok := r.padded(int64(l))
		if !ok {
			return nil, fmt.Errorf("%w: value of %d bytes, %d left", ErrMalformed, l, r.len())
		}
		if len(out) < 16 {
			out = append(out, v)
		}
	}
	return out, nil
}
