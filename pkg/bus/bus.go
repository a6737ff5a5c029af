// Package bus is the system's message bus on NATS JetStream: the streams and
// subjects (topics.go), a versioned JSON envelope with trace context and a
// deterministic Msg-Id in the headers, publishing, the consumer runner every
// stage shares (consume.go), and an embedded JetStream server for the native
// stack and tests.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Header names the bus sets on every message besides the trace context.
const (
	HeaderMsgID  = jetstream.MsgIDHeader // Nats-Msg-Id: JetStream's dedupe key
	HeaderSchema = "Ownyou-Schema"       // payload schema version
)

// Config is the bus part of every service's configuration.
type Config struct {
	URL             string        `env:"OWNYOU_NATS_URL" envDefault:"nats://127.0.0.1:4222" help:"NATS server with JetStream" secret:"true"`
	DuplicateWindow time.Duration `env:"OWNYOU_BUS_DUPLICATE_WINDOW" envDefault:"10m" help:"JetStream Msg-Id dedupe window"`
	Retention       time.Duration `env:"OWNYOU_BUS_RETENTION" envDefault:"168h" help:"how long stage messages are kept in the streams"`
	MaxDeliver      int           `env:"OWNYOU_BUS_MAX_DELIVER" envDefault:"5" help:"attempts before a message goes to the dead letters"`
	AckWait         time.Duration `env:"OWNYOU_BUS_ACK_WAIT" envDefault:"30s" help:"time a worker may hold a message between progress signals"`
	BackoffBase     time.Duration `env:"OWNYOU_BUS_BACKOFF_BASE" envDefault:"1s" help:"first retry delay (doubles each attempt)"`
	BackoffMax      time.Duration `env:"OWNYOU_BUS_BACKOFF_MAX" envDefault:"2m" help:"longest retry delay"`
	DrainTimeout    time.Duration `env:"OWNYOU_BUS_DRAIN_TIMEOUT" envDefault:"30s" help:"how long in-flight messages may finish at shutdown"`
}

// DeadLetterRecorder stores a dead letter where the user can see it. The bus
// calls it before terminating a message; if it fails the message is retried
// instead, so nothing is lost.
type DeadLetterRecorder interface {
	RecordDeadLetter(ctx context.Context, dl DeadLetter) error
}

// DeadLetter is a message a stage gave up on.
type DeadLetter struct {
	Stage    string          `json:"stage"`
	Subject  string          `json:"subject"`
	MsgID    string          `json:"msg_id"`
	Key      string          `json:"key,omitempty"` // the entity the message is about (an email id)
	Payload  json.RawMessage `json:"payload"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	At       time.Time       `json:"at"`
}

// Bus is a connection to NATS with JetStream and the system's streams ensured.
// It is safe for concurrent use.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	cfg     Config
	log     *slog.Logger
	dl      DeadLetterRecorder
	metrics *metrics
}

// Options are the collaborators of a Bus.
type Options struct {
	Log        *slog.Logger
	Metrics    prometheus.Registerer // optional
	DeadLetter DeadLetterRecorder    // optional; without it dead letters are only published
	Name       string                // connection name shown by the NATS server
}

// Connect connects to NATS and creates or updates every stream of topics.go.
func Connect(ctx context.Context, cfg Config, opts Options) (*Bus, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	nc, err := nats.Connect(cfg.URL,
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				opts.Log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { opts.Log.Info("nats reconnected") }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b := &Bus{nc: nc, js: js, cfg: cfg, log: opts.Log, dl: opts.DeadLetter, metrics: newMetrics(opts.Metrics)}
	if err := b.ensureStreams(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bus) ensureStreams(ctx context.Context) error {
	for _, s := range streams() {
		sc := jetstream.StreamConfig{
			Name:       s.Name,
			Subjects:   s.Subjects,
			Storage:    jetstream.FileStorage,
			Duplicates: b.cfg.DuplicateWindow,
			MaxAge:     b.cfg.Retention,
		}
		if s.WorkQueue {
			sc.Retention = jetstream.WorkQueuePolicy
			sc.MaxAge = 0
		}
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", s.Name, err)
		}
	}
	return nil
}

// SetDeadLetterRecorder sets where dead letters are recorded; call it before
// starting consumers.
func (b *Bus) SetDeadLetterRecorder(r DeadLetterRecorder) { b.dl = r }

// Conn returns the underlying NATS connection (request/reply, KV).
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Config returns the configuration the bus was connected with.
func (b *Bus) Config() Config { return b.cfg }

// Ready reports whether the connection to NATS is up.
func (b *Bus) Ready(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("nats: %s", b.nc.Status())
	}
	return nil
}

// Drain finishes in-flight publishes and subscriptions and closes the connection;
// call it after every consumer has stopped.
func (b *Bus) Drain() error {
	if b.nc.IsClosed() {
		return nil
	}
	done := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return fmt.Errorf("drain nats: %w", err)
	}
	select {
	case <-done:
	case <-time.After(b.cfg.DrainTimeout + time.Second):
		b.nc.Close()
	}
	return nil
}

// envelope is the JSON body of every message.
type envelope struct {
	V    int             `json:"v"`
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// ErrPublish wraps every publishing failure.
var ErrPublish = errors.New("publish")

// Publish sends v on topic t. key is the deterministic id of what the message
// says (an email id for "email X was ingested"); the JetStream Msg-Id is the
// subject plus key, so a repeat within the duplicate window is stored once while
// the same email's messages on other subjects of the stream are not mistaken
// for duplicates. It returns after the server has stored the message (or
// recognized it as a duplicate).
func Publish[T any](ctx context.Context, b *Bus, t Topic[T], key string, v T) error {
	if key == "" {
		return fmt.Errorf("%w %s: empty key", ErrPublish, t.Subject)
	}
	return publish(ctx, b, t.Subject, t.Version, t.Subject+":"+key, v)
}

// publish sends v on subject with the given Msg-Id.
func publish(ctx context.Context, b *Bus, subject string, version int, msgID string, v any) error {
	if msgID == "" {
		return fmt.Errorf("%w %s: empty msg id", ErrPublish, subject)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w %s: encode: %w", ErrPublish, subject, err)
	}
	body, err := json.Marshal(envelope{V: version, ID: msgID, Type: subject, Time: time.Now().UTC(), Data: data})
	if err != nil {
		return fmt.Errorf("%w %s: encode envelope: %w", ErrPublish, subject, err)
	}
	ctx, span := otel.Tracer("ownyou/bus").Start(ctx, "publish "+subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", subject), attribute.String("messaging.message.id", msgID)))
	defer span.End()
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set(HeaderMsgID, msgID)
	msg.Header.Set(HeaderSchema, fmt.Sprint(version))
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(msg.Header))
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		span.RecordError(err)
		return fmt.Errorf("%w %s: %w", ErrPublish, subject, err)
	}
	b.metrics.published.WithLabelValues(subject).Inc()
	return nil
}

// ConsumerLag reports how many messages a stage's durable consumer has not yet
// been handed (pending) and how many are handed but not acknowledged.
func (b *Bus) ConsumerLag(ctx context.Context, stream, consumer string) (pending uint64, ackPending int, err error) {
	c, err := b.js.Consumer(ctx, stream, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("consumer %s info: %w", consumer, err)
	}
	return info.NumPending, info.NumAckPending, nil
}

// ImportObjects returns the object bucket that carries uploaded files from the
// gateway to the ingest service, creating it when missing.
func (b *Bus) ImportObjects(ctx context.Context) (jetstream.ObjectStore, error) {
	os, err := b.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ObjectBucketImports,
		Description: "uploaded files waiting for import",
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("object bucket %s: %w", ObjectBucketImports, err)
	}
	return os, nil
}

type metrics struct {
	published *prometheus.CounterVec
	handled   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inflight  *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ownyou_bus_published_total", Help: "Messages published, by subject."}, []string{"subject"}),
		handled:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ownyou_stage_messages_total", Help: "Messages handled by a stage, by outcome (ack, retry, dead)."}, []string{"stage", "outcome"}),
		duration:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ownyou_stage_handle_seconds", Help: "Time a stage's handler took per message.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"stage"}),
		inflight:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ownyou_stage_inflight", Help: "Messages a stage is handling now."}, []string{"stage"}),
	}
	if reg != nil {
		m.published = register(reg, m.published)
		m.handled = register(reg, m.handled)
		m.duration = register(reg, m.duration)
		m.inflight = register(reg, m.inflight)
	}
	return m
}

// register adds c to reg, or returns the collector already registered under the
// same name (several buses in one process share one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register metric: %v", err)) // two different metrics under one name: a programming error
	}
	return c
}
