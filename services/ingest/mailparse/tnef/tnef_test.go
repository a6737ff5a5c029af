package tnef

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// sample is a hand-built winmail.dat: message class, a plain body, and two
// attachments, one with a MIME tag and one whose type comes from its name.
func sample() []byte {
	var b Builder
	b.Attr(levelMessage, 0x00089006, []byte{0, 0, 1, 0})                       // attTnefVersion
	b.Attr(levelMessage, 0x00069007, []byte{0xe4, 0x04, 0, 0, 0, 0, 0, 0})     // attOemCodepage 1252
	b.Attr(levelMessage, 0x00078008, []byte("IPM.Microsoft Mail.Note\x00"))    // attMessageClass
	b.Attr(levelMessage, 0x0002800C, []byte("Quarterly figures attached\x00")) // attBody
	b.Attachment("report.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", bytes.Repeat([]byte{1}, 1234))
	b.Attachment("photo.png", "", bytes.Repeat([]byte{2}, 77))
	return b.Bytes()
}

func TestDecode(t *testing.T) {
	var withProps Builder
	withProps.Attr(levelMessage, 0x00069003, PropList(UnicodeProp(prBody, "unicode body ✓"), UnicodeProp(prBodyHTML, "<p>hi</p>")))
	withProps.Attr(levelAttachment, 0x00069002, make([]byte, 14))
	withProps.Attr(levelAttachment, 0x00018010, []byte("SHORTN~1.TXT\x00"))
	withProps.Attr(levelAttachment, 0x0006800F, []byte("hello"))
	withProps.Attr(levelAttachment, 0x00069005, PropList(UnicodeProp(prAttachLongName, `C:\Users\me\long name.txt`)))

	var latin1 Builder
	latin1.Attr(levelMessage, 0x0002800C, []byte("caf\xe9\x00"))

	badSum := sample()
	binary.LittleEndian.PutUint16(badSum[len(badSum)-2:], 0xFFFF) // last attribute's checksum

	tests := []struct {
		name      string
		data      []byte
		wantErr   error
		wantBody  string
		wantHTML  string
		wantAtt   []Attachment
		wantWarn  string
		wantClass string
	}{
		{name: "attachments and body are listed", data: sample(), wantBody: "Quarterly figures attached", wantClass: "IPM.Microsoft Mail.Note",
			wantAtt: []Attachment{
				{Name: "report.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Size: 1234},
				{Name: "photo.png", ContentType: "image/png", Size: 77},
			}},
		{name: "MAPI bodies and long file name win over legacy attributes", data: withProps.Bytes(), wantBody: "unicode body ✓", wantHTML: "<p>hi</p>",
			wantAtt: []Attachment{{Name: "long name.txt", ContentType: "text/plain", Size: 5}}},
		{name: "code page text is converted to UTF-8", data: latin1.Bytes(), wantBody: "café"},
		{name: "checksum mismatch is a warning, not an error", data: badSum, wantWarn: "checksum", wantBody: "Quarterly figures attached"},
		{name: "wrong signature is not TNEF", data: []byte("PK\x03\x04 not tnef at all"), wantErr: ErrNotTNEF},
		{name: "empty input is not TNEF", data: nil, wantErr: ErrNotTNEF},
		{name: "truncated attribute is malformed", data: sample()[:len(sample())-40], wantErr: ErrMalformed},
		{name: "attribute longer than the stream is malformed", data: func() []byte {
			d := sample()
			binary.LittleEndian.PutUint32(d[6+1+4:], 0x7FFFFFFF)
			return d
		}(), wantErr: ErrMalformed},
		{name: "unknown level is malformed", data: func() []byte {
			d := sample()
			d[6] = 9
			return d
		}(), wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.data, Limits{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Body != tc.wantBody {
				t.Errorf("Body = %q, want %q", m.Body, tc.wantBody)
			}
			if m.BodyHTML != tc.wantHTML {
				t.Errorf("BodyHTML = %q, want %q", m.BodyHTML, tc.wantHTML)
			}
			if tc.wantClass != "" && m.MessageClass != tc.wantClass {
				t.Errorf("MessageClass = %q, want %q", m.MessageClass, tc.wantClass)
			}
			if tc.wantAtt != nil {
				if len(m.Attachments) != len(tc.wantAtt) {
					t.Fatalf("attachments = %+v, want %+v", m.Attachments, tc.wantAtt)
				}
				for i, a := range tc.wantAtt {
					if m.Attachments[i] != a {
						t.Errorf("attachment %d = %+v, want %+v", i, m.Attachments[i], a)
					}
				}
			}
			if tc.wantWarn != "" && !strings.Contains(strings.Join(m.Warnings, "|"), tc.wantWarn) {
				t.Errorf("warnings = %v, want one containing %q", m.Warnings, tc.wantWarn)
			}
		})
	}
}

func TestDecodeEnforcesLimits(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
	}{
		{name: "stream over MaxBytes is refused", lim: Limits{MaxBytes: 100}},
		{name: "more attributes than MaxAttributes are refused", lim: Limits{MaxAttributes: 3}},
		{name: "more attachments than MaxAttachments are refused", lim: Limits{MaxAttachments: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(sample(), tc.lim); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
		})
	}
}

func TestPropertyCountBeyondDataIsMalformed(t *testing.T) {
	var b Builder
	props := PropList(UnicodeProp(prBody, "x"))
	binary.LittleEndian.PutUint32(props[8:], 1<<30) // value count of the first property
	b.Attr(levelMessage, 0x00069003, props)
	if _, err := Decode(b.Bytes(), Limits{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sample())
	var b Builder
	b.Attr(levelMessage, 0x00069003, PropList(UnicodeProp(prBody, "body"), UnicodeProp(prBodyHTML, "<b>x</b>")))
	b.Attr(levelAttachment, 0x00069005, PropList(UnicodeProp(prAttachLongName, "a.pdf")))
	f.Add(b.Bytes())
	f.Add([]byte{0x78, 0x9f, 0x3e, 0x22, 0, 0})
	var rtf Builder
	rtf.Attr(levelMessage, 0x00069003, PropList(BinaryProp(0x1009, CompressRTF(`{\rtf1\ansi\pard body\par}`))))
	f.Add(rtf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, Limits{MaxBytes: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrNotTNEF) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, a := range m.Attachments {
			if a.Size < 0 || a.Size > int64(len(data)) {
				t.Fatalf("attachment size %d out of range", a.Size)
			}
		}
	})
}
