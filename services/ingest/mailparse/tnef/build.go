package tnef

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
)

// Builder writes a TNEF stream record by record; tests and fixtures use it
// to produce valid (or deliberately broken) winmail.dat data. The zero
// value is ready; it is not safe for concurrent use.
type Builder struct{ buf bytes.Buffer }

// Attr appends one attribute record with a correct checksum. id is the
// full 32-bit attribute id (type in the high 16 bits).
func (b *Builder) Attr(level byte, id uint32, data []byte) *Builder {
	b.header()
	b.buf.WriteByte(level)
	_ = binary.Write(&b.buf, binary.LittleEndian, id)
	_ = binary.Write(&b.buf, binary.LittleEndian, uint32(len(data)))
	b.buf.Write(data)
	_ = binary.Write(&b.buf, binary.LittleEndian, checksum(data))
	return b
}

// Attachment appends attAttachRendData, attAttachTitle and attAttachData
// for one file, plus an attAttachment property list carrying mimeType
// (PR_ATTACH_MIME_TAG) and the long file name when they are not empty.
func (b *Builder) Attachment(name, mimeType string, data []byte) *Builder {
	b.Attr(levelAttachment, 0x00069002, make([]byte, 14))
	b.Attr(levelAttachment, 0x00018010, append([]byte(name), 0))
	b.Attr(levelAttachment, 0x0006800F, data)
	var props [][]byte
	if mimeType != "" {
		props = append(props, UnicodeProp(prAttachMimeTag, mimeType))
	}
	if name != "" {
		props = append(props, UnicodeProp(prAttachLongName, name))
	}
	if len(props) > 0 {
		b.Attr(levelAttachment, 0x00069005, PropList(props...))
	}
	return b
}

// Bytes returns the stream built so far (signature and legacy key included).
func (b *Builder) Bytes() []byte {
	b.header()
	return bytes.Clone(b.buf.Bytes())
}

func (b *Builder) header() {
	if b.buf.Len() == 0 {
		_ = binary.Write(&b.buf, binary.LittleEndian, uint32(Signature))
		_ = binary.Write(&b.buf, binary.LittleEndian, uint16(0x0001))
	}
}

// PropList encodes MAPI properties (each from UnicodeProp or a hand-built
// encoding) as the value of attMsgProps or attAttachment.
func PropList(props ...[]byte) []byte {
	var out bytes.Buffer
	_ = binary.Write(&out, binary.LittleEndian, uint32(len(props)))
	for _, p := range props {
		out.Write(p)
	}
	return out.Bytes()
}

// UnicodeProp encodes one PT_UNICODE MAPI property with id pid.
func UnicodeProp(pid uint16, v string) []byte {
	u := utf16.Encode([]rune(v))
	data := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		data = binary.LittleEndian.AppendUint16(data, c)
	}
	data = append(data, 0, 0)
	var out bytes.Buffer
	_ = binary.Write(&out, binary.LittleEndian, uint16(ptUnicode))
	_ = binary.Write(&out, binary.LittleEndian, pid)
	_ = binary.Write(&out, binary.LittleEndian, uint32(1))
	_ = binary.Write(&out, binary.LittleEndian, uint32(len(data)))
	out.Write(data)
	for out.Len()%4 != 0 {
		out.WriteByte(0)
	}
	return out.Bytes()
}

// BinaryProp encodes one PT_BINARY MAPI property with id pid.
func BinaryProp(pid uint16, v []byte) []byte {
	var out bytes.Buffer
	_ = binary.Write(&out, binary.LittleEndian, uint16(ptBinary))
	_ = binary.Write(&out, binary.LittleEndian, pid)
	_ = binary.Write(&out, binary.LittleEndian, uint32(1))
	_ = binary.Write(&out, binary.LittleEndian, uint32(len(v)))
	out.Write(v)
	for out.Len()%4 != 0 {
		out.WriteByte(0)
	}
	return out.Bytes()
}

// CompressRTF encodes rtf as PR_RTF_COMPRESSED data (MS-OXRTFCP). It
// emits literals only, except for a leading reference into the initial
// dictionary when rtf starts like it, so readers exercise both token kinds.
func CompressRTF(rtf string) []byte {
	var body bytes.Buffer
	pos := len(rtfDict)
	var ctrl byte
	var run bytes.Buffer
	bit := 0
	flushRun := func() {
		body.WriteByte(ctrl)
		body.Write(run.Bytes())
		ctrl, bit = 0, 0
		run.Reset()
	}
	ref := func(off, n int) {
		ctrl |= 1 << bit
		v := uint16(off<<4 | (n - 2))
		run.WriteByte(byte(v >> 8))
		run.WriteByte(byte(v))
		if bit++; bit == 8 {
			flushRun()
		}
	}
	in := []byte(rtf)
	if n := commonPrefix(in, []byte(rtfDict)); n >= 2 {
		n = min(n, 17)
		ref(0, n)
		in = in[n:]
		pos += n
	}
	for _, c := range in {
		run.WriteByte(c)
		pos++
		if bit++; bit == 8 {
			flushRun()
		}
	}
	ref(pos%4096, 2) // a reference to the write position ends the stream
	if bit > 0 {
		flushRun()
	}
	var out bytes.Buffer
	_ = binary.Write(&out, binary.LittleEndian, uint32(body.Len()+12))
	_ = binary.Write(&out, binary.LittleEndian, uint32(len(rtf)))
	_ = binary.Write(&out, binary.LittleEndian, uint32(rtfCompressed))
	_ = binary.Write(&out, binary.LittleEndian, uint32(0)) // CRC, not checked by Decode
	out.Write(body.Bytes())
	return out.Bytes()
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
