package mailparse

import (
	"strings"

	"github.com/jhillyerd/enmime/v2"

	"github.com/ownyou/home/services/ingest/mailparse/tnef"
)

// isTNEF reports whether an attachment part is a winmail.dat TNEF stream.
func isTNEF(p *enmime.Part) bool {
	ct := strings.ToLower(p.ContentType)
	return ct == "application/ms-tnef" || ct == "application/vnd.ms-tnef" ||
		strings.EqualFold(p.FileName, "winmail.dat")
}

// expandTNEF lists the files inside a winmail.dat part as attachments and
// returns the decoded stream. When the stream cannot be read it records a
// warning and returns nil: the part is then kept as an opaque attachment.
func (m *Message) expandTNEF(p *enmime.Part) *tnef.Message {
	tm, err := tnef.Decode(p.Content, tnef.Limits{})
	if err != nil {
		m.addWarning("winmail.dat kept undecoded: " + err.Error())
		return nil
	}
	for _, w := range tm.Warnings {
		m.addWarning("winmail.dat: " + w)
	}
	for _, a := range tm.Attachments {
		m.Attachments = append(m.Attachments, Attachment{
			Name:        truncateUTF8(strings.ToValidUTF8(a.Name, "\uFFFD"), 512),
			ContentType: strings.ToLower(strings.ToValidUTF8(a.ContentType, "")),
			Size:        a.Size,
		})
	}
	return tm
}

// tnefText is the readable text of a TNEF body: plain text when present,
// else its HTML converted.
func (m *Message) tnefText(tm *tnef.Message, opts Options) string {
	if tm.Body != "" {
		return m.cleanBody("text", normalizeNewlines(tm.Body), opts.MaxTextBytes)
	}
	if tm.BodyHTML == "" {
		return ""
	}
	conv, truncated := HTMLToText(m.cleanBody("html", tm.BodyHTML, opts.MaxHTMLBytes), opts.MaxHTMLBytes, opts.MaxTextBytes)
	if truncated {
		m.addWarning("html to text conversion truncated")
	}
	return m.cleanBody("text", conv, opts.MaxTextBytes)
}
