package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jhillyerd/enmime/v2"

	"github.com/ownyou/home/pkg/store"
)

// errEmptyMessage is recorded for a message with no bytes at all.
var errEmptyMessage = errors.New("empty message")

// normalize parses one raw message into an email record.
func normalize(raw []byte) (e store.Email, err error) {
	defer func() {
		if p := recover(); p != nil { // a parser bug must not take the import down
			err = fmt.Errorf("mime parser failed: %v", p)
		}
	}()
	if len(bytes.TrimSpace(raw)) == 0 {
		return e, errEmptyMessage
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		return e, fmt.Errorf("parse mime: %w", err)
	}
	e.Raw = raw
	e.SizeBytes = int64(len(raw))
	e.Subject = strings.TrimSpace(env.GetHeader("Subject"))
	if from, err := env.AddressList("From"); err == nil && len(from) > 0 {
		e.FromAddr, e.FromName = strings.ToLower(from[0].Address), from[0].Name
	} else {
		e.FromAddr = strings.TrimSpace(env.GetHeader("From"))
	}
	e.To = addresses(env, "To")
	e.Cc = addresses(env, "Cc")
	if d, err := mail.ParseDate(env.GetHeader("Date")); err == nil {
		d = d.UTC()
		e.SentAt, e.DateSource = &d, "Date"
	}
	e.BodyText = strings.TrimSpace(env.Text)
	e.BodyHTML = env.HTML
	for _, a := range env.Attachments {
		e.Attachments = append(e.Attachments, store.Attachment{Name: a.FileName, ContentType: a.ContentType, Size: int64(len(a.Content))})
	}
	for _, pe := range env.Errors {
		e.Warnings = append(e.Warnings, pe.Error())
	}
	h := sha256.New()
	date := ""
	if e.SentAt != nil {
		date = e.SentAt.Format(time.RFC3339)
	}
	for _, part := range []string{e.FromAddr, date, e.Subject, e.BodyText} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	e.ContentHash = hex.EncodeToString(h.Sum(nil))
	e.MessageID = strings.Trim(strings.TrimSpace(env.GetHeader("Message-Id")), "<>")
	if e.MessageID == "" {
		e.MessageID = "synthesized-" + e.ContentHash[:32] + "@ownyou.local"
	}
	e.ID = store.EmailID(e.MessageID, e.ContentHash)
	return e, nil
}

func addresses(env *enmime.Envelope, key string) []string {
	list, err := env.AddressList(key)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, strings.ToLower(a.Address))
	}
	return out
}
