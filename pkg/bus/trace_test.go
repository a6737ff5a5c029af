package bus_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/testkit"
)

// One email's journey through two stages is one trace: the consumer's span and
// everything the handler does continue the publisher's trace.
func TestTraceContextCrossesStages(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	b := testkit.NATS(t, nil)
	ctx, root := tp.Tracer("test").Start(context.Background(), "import")
	if err := bus.Publish(ctx, b, bus.EmailsIngested, "e1", bus.EmailIngested{EmailID: "e1"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	want := root.SpanContext().TraceID()

	got := make(chan trace.TraceID, 2)
	c1, err := bus.Consume(context.Background(), b, bus.EmailsIngested, bus.ConsumeOptions{Durable: "s1"}, func(ctx context.Context, m bus.EmailIngested) error {
		got <- trace.SpanContextFromContext(ctx).TraceID()
		return bus.Publish(ctx, b, bus.EmailsEmbedded, m.EmailID, bus.EmailEmbedded{EmailID: m.EmailID})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Stop()
	c2, err := bus.Consume(context.Background(), b, bus.EmailsEmbedded, bus.ConsumeOptions{Durable: "s2"}, func(ctx context.Context, m bus.EmailEmbedded) error {
		got <- trace.SpanContextFromContext(ctx).TraceID()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop()
	for stage := 1; stage <= 2; stage++ {
		select {
		case id := <-got:
			if id != want {
				t.Fatalf("stage %d handler ran in trace %s, want the publisher's %s", stage, id, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stage %d never ran", stage)
		}
	}
}
