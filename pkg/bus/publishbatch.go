package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// batchAckTimeout bounds the wait for a batch's acks when ctx has no deadline.
const batchAckTimeout = 30 * time.Second

// Keyed is one message of a PublishBatch: the deterministic key of what it
// says (its Msg-Id is the subject plus key, as with Publish) and its payload.
type Keyed[T any] struct {
	Key string
	V   T
}

// PublishBatch sends every item on topic t without waiting for each ack in
// turn (JetStream asynchronous publish), then waits until the server has
// stored (or recognized as duplicate) every one of them. It returns nil only
// when all are acknowledged; on error any subset may be stored, and
// publishing the whole batch again is safe because the Msg-Ids dedupe. Safe
// for concurrent use.
func PublishBatch[T any](ctx context.Context, b *Bus, t Topic[T], items []Keyed[T]) error {
	if len(items) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, batchAckTimeout)
		defer cancel()
	}
	ctx, span := otel.Tracer("ownyou/bus").Start(ctx, "publish batch "+t.Subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", t.Subject),
			attribute.Int("messaging.batch.message_count", len(items))))
	defer span.End()
	fail := func(err error) error {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	now := time.Now().UTC()
	futures := make([]jetstream.PubAckFuture, 0, len(items))
	for _, it := range items {
		if it.Key == "" {
			return fail(fmt.Errorf("%w %s: empty key", ErrPublish, t.Subject))
		}
		msgID := t.Subject + ":" + it.Key
		data, err := json.Marshal(it.V)
		if err != nil {
			return fail(fmt.Errorf("%w %s: encode: %w", ErrPublish, t.Subject, err))
		}
		body, err := json.Marshal(envelope{V: t.Version, ID: msgID, Type: t.Subject, Time: now, Data: data})
		if err != nil {
			return fail(fmt.Errorf("%w %s: encode envelope: %w", ErrPublish, t.Subject, err))
		}
		msg := nats.NewMsg(t.Subject)
		msg.Data = body
		msg.Header.Set(HeaderMsgID, msgID)
		msg.Header.Set(HeaderSchema, fmt.Sprint(t.Version))
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(msg.Header))
		f, err := b.js.PublishMsgAsync(msg)
		if err != nil {
			return fail(fmt.Errorf("%w %s: %w", ErrPublish, t.Subject, err))
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fail(fmt.Errorf("%w %s: %w", ErrPublish, t.Subject, err))
		case <-ctx.Done():
			return fail(fmt.Errorf("%w %s: waiting for acks: %w", ErrPublish, t.Subject, context.Cause(ctx)))
		}
	}
	b.metrics.published.WithLabelValues(t.Subject).Add(float64(len(items)))
	return nil
}
