package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Republish sends a stored message body (the envelope a consumer received, as
// kept in a dead-letter record) unchanged on subject with the given Msg-Id. The
// caller picks a Msg-Id that is not a duplicate of the original within the
// stream's window (e.g. the original id plus a retry suffix). It returns after
// the server has stored the message.
func Republish(ctx context.Context, b *Bus, subject, msgID string, body []byte) error {
	if msgID == "" {
		return fmt.Errorf("%w %s: empty msg id", ErrPublish, subject)
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set(HeaderMsgID, msgID)
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("%w %s: %w", ErrPublish, subject, err)
	}
	b.metrics.published.WithLabelValues(subject).Inc()
	return nil
}

// Resend publishes v on topic t like Publish, but with the Msg-Id
// subject:key:nonce, so a deliberate second send (reprocessing) is not dropped
// as a duplicate of the first. Handlers must stay idempotent.
func Resend[T any](ctx context.Context, b *Bus, t Topic[T], key, nonce string, v T) error {
	if key == "" || nonce == "" {
		return fmt.Errorf("%w %s: empty key or nonce", ErrPublish, t.Subject)
	}
	return publish(ctx, b, t.Subject, t.Version, t.Subject+":"+key+":"+nonce, v)
}
