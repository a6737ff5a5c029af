package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Handler handles one message. Returning nil acknowledges it; an error marked
// with Permanent sends it to the dead letters at once; any other error retries
// it later with exponential backoff, up to MaxDeliver attempts. Handlers must be
// idempotent: a message may be delivered more than once.
type Handler[T any] func(ctx context.Context, msg T) error

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the message goes to the dead
// letters with this error. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// ErrUnsupportedSchema is the dead-letter reason of a message written by a
// newer producer than this consumer understands.
var ErrUnsupportedSchema = errors.New("unsupported schema version")

// ConsumeOptions configure one stage's consumer in this process.
type ConsumeOptions struct {
	// Durable is the consumer name shared by every replica of the stage.
	Durable string
	// Concurrency is how many messages this process handles at once (≥ 1).
	Concurrency int
}

// Consumer is a running stage consumer. Stop or cancel the context given to
// Consume to drain it.
type Consumer struct {
	stop     context.CancelFunc
	done     chan struct{}
	inflight sync.WaitGroup
}

// Consume starts handling topic t with durable consumer opts.Durable: one
// durable pull consumer for all replicas, explicit acks, InProgress while the
// handler runs, nak with exponential backoff for retryable errors, and a
// dead-letter record plus Term for permanent errors or after MaxDeliver. When
// ctx is cancelled it stops pulling, lets in-flight handlers finish (bounded by
// the bus's DrainTimeout; unfinished messages are redelivered later), and Done
// is closed.
func Consume[T any](ctx context.Context, b *Bus, t Topic[T], opts ConsumeOptions, h Handler[T]) (*Consumer, error) {
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, t.Stream, jetstream.ConsumerConfig{
		Durable:       opts.Durable,
		FilterSubject: t.Subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		// The runner decides when to give up (it records a dead letter first), so
		// the server never silently stops redelivering.
		MaxDeliver:    -1,
		MaxAckPending: 10000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", opts.Durable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(opts.Concurrency))
	if err != nil {
		return nil, fmt.Errorf("consumer %s: messages: %w", opts.Durable, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	c := &Consumer{stop: stop, done: make(chan struct{})}
	r := &runner[T]{b: b, topic: t, stage: opts.Durable, h: h}

	// Handlers run on a context that is not cancelled with ctx, so in-flight work
	// finishes during a drain; it is cancelled when the drain deadline passes.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	sem := make(chan struct{}, opts.Concurrency)
	msgs := make(chan jetstream.Msg)
	go func() { // the iterator blocks in Next; Stop unblocks it
		<-runCtx.Done()
		it.Drain()
	}()
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				b.log.WarnContext(runCtx, "consumer fetch", "stage", opts.Durable, "err", err)
				continue
			}
			msgs <- m
		}
	}()
	go func() {
		defer close(c.done)
		defer cancelHandlers()
		c.dispatch(runCtx, msgs, sem, func(m jetstream.Msg) { r.handle(handlerCtx, m) })
		// Messages fetched but not started go back to the server now, so another
		// replica (or the next start) takes them without waiting for AckWait.
		go func() {
			for m := range msgs {
				_ = m.Nak()
			}
		}()
		waited := make(chan struct{})
		go func() { c.inflight.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(b.cfg.DrainTimeout):
			b.log.Warn("consumer drain timed out; unfinished messages will be redelivered", "stage", opts.Durable)
			cancelHandlers()
			<-waited
		}
	}()
	return c, nil
}

// dispatch hands messages to at most cap(sem) concurrent handlers until ctx is
// cancelled or the iterator closes.
func (c *Consumer) dispatch(ctx context.Context, msgs <-chan jetstream.Msg, sem chan struct{}, handle func(jetstream.Msg)) {
	for {
		select {
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		select {
		case <-ctx.Done():
			<-sem
			return
		case m, ok := <-msgs:
			if !ok {
				<-sem
				return
			}
			c.inflight.Add(1)
			go func() {
				defer func() { <-sem; c.inflight.Done() }()
				handle(m)
			}()
		}
	}
}

// Stop stops pulling, waits for in-flight handlers (bounded by the drain
// timeout) and returns when the consumer is done.
func (c *Consumer) Stop() {
	c.stop()
	<-c.done
}

// Done is closed once the consumer has drained.
func (c *Consumer) Done() <-chan struct{} { return c.done }

type runner[T any] struct {
	b     *Bus
	topic Topic[T]
	stage string
	h     Handler[T]
}

func (r *runner[T]) handle(ctx context.Context, m jetstream.Msg) {
	b := r.b
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	msgID := m.Headers().Get(HeaderMsgID)
	ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(m.Headers()))
	ctx, span := otel.Tracer("ownyou/bus").Start(ctx, "process "+m.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", m.Subject()),
			attribute.String("messaging.consumer.group.name", r.stage), attribute.String("messaging.message.id", msgID), attribute.Int("messaging.delivery.attempt", attempt)))
	defer span.End()

	b.metrics.inflight.WithLabelValues(r.stage).Inc()
	defer b.metrics.inflight.WithLabelValues(r.stage).Dec()
	start := time.Now()

	var v T
	env, err := decode(m.Data(), r.topic.Version, &v)
	key := ""
	if k, ok := any(v).(interface{ Key() string }); ok {
		key = k.Key()
	}
	if err == nil {
		if attempt > b.cfg.MaxDeliver {
			// Earlier attempts never reported back: the process died or the handler
			// hung past AckWait. Do not risk another crash.
			err = Permanent(fmt.Errorf("gave up after %d deliveries without an answer (the worker died or hung while handling it)", attempt-1))
		} else {
			stopKeepAlive := keepAlive(m, b.cfg.AckWait)
			err = safeCall(ctx, r.h, v)
			stopKeepAlive()
		}
	}
	b.metrics.duration.WithLabelValues(r.stage).Observe(time.Since(start).Seconds())
	if env.ID != "" && msgID == "" {
		msgID = env.ID
	}

	switch {
	case err == nil:
		if aerr := m.Ack(); aerr != nil {
			b.log.WarnContext(ctx, "ack failed; the message will be redelivered", "stage", r.stage, "msg_id", msgID, "err", aerr)
		}
		b.metrics.handled.WithLabelValues(r.stage, "ack").Inc()
	case IsPermanent(err) || attempt >= b.cfg.MaxDeliver:
		span.SetStatus(codes.Error, err.Error())
		dl := DeadLetter{Stage: r.stage, Subject: m.Subject(), MsgID: msgID, Key: key, Payload: rawPayload(m.Data()), Error: err.Error(), Attempts: attempt, At: time.Now().UTC()}
		if derr := r.deadLetter(ctx, dl); derr != nil {
			b.log.ErrorContext(ctx, "record dead letter failed; retrying the message", "stage", r.stage, "msg_id", msgID, "err", derr)
			_ = m.NakWithDelay(backoff(attempt, b.cfg.BackoffBase, b.cfg.BackoffMax))
			b.metrics.handled.WithLabelValues(r.stage, "retry").Inc()
			return
		}
		b.log.ErrorContext(ctx, "message dead-lettered", "stage", r.stage, "msg_id", msgID, "key", key, "attempts", attempt, "err", err)
		if terr := m.TermWithReason(truncate(err.Error(), 200)); terr != nil {
			b.log.WarnContext(ctx, "term failed", "stage", r.stage, "msg_id", msgID, "err", terr)
		}
		b.metrics.handled.WithLabelValues(r.stage, "dead").Inc()
	default:
		span.SetStatus(codes.Error, err.Error())
		delay := backoff(attempt, b.cfg.BackoffBase, b.cfg.BackoffMax)
		b.log.WarnContext(ctx, "message failed; will retry", "stage", r.stage, "msg_id", msgID, "key", key, "attempt", attempt, "retry_in", delay, "err", err)
		if nerr := m.NakWithDelay(delay); nerr != nil {
			b.log.WarnContext(ctx, "nak failed; the message will be redelivered after AckWait", "stage", r.stage, "err", nerr)
		}
		b.metrics.handled.WithLabelValues(r.stage, "retry").Inc()
	}
}

func (r *runner[T]) deadLetter(ctx context.Context, dl DeadLetter) error {
	if r.b.dl != nil {
		if err := r.b.dl.RecordDeadLetter(ctx, dl); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	id := dl.Stage + ":" + dl.MsgID
	if dl.MsgID == "" {
		id = fmt.Sprintf("%s:%s:%d", dl.Stage, dl.Subject, dl.At.UnixNano())
	}
	if err := publish(ctx, r.b, DeadLetterSubject(dl.Stage), 1, id, dl); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// decode unpacks an envelope into v; a payload that cannot be read is permanent.
func decode(data []byte, maxVersion int, v any) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return env, Permanent(fmt.Errorf("decode envelope: %w", err))
	}
	if env.V > maxVersion {
		return env, Permanent(fmt.Errorf("%w: message v%d, this consumer reads up to v%d", ErrUnsupportedSchema, env.V, maxVersion))
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return env, Permanent(fmt.Errorf("decode payload: %w", err))
	}
	return env, nil
}

// safeCall runs h, turning a panic into a permanent error so one bad message
// cannot crash the process.
func safeCall[T any](ctx context.Context, h Handler[T], v T) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("handler panic: %v\n%s", p, debug.Stack()))
		}
	}()
	return h(ctx, v)
}

// keepAlive tells the server the message is still being worked on, so long
// work is not redelivered to another worker.
func keepAlive(m jetstream.Msg, ackWait time.Duration) (stop func()) {
	every := ackWait / 3
	if every <= 0 {
		every = 10 * time.Second
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	return func() { close(done) }
}

// backoff is base·2^(attempt−1) capped at max, with ±20 % jitter.
func backoff(attempt int, base, max time.Duration) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) - d/10
	return d + jitter
}

func rawPayload(data []byte) json.RawMessage {
	if json.Valid(data) {
		return data
	}
	b, _ := json.Marshal(string(data))
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
