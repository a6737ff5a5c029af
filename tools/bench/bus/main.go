// Command bus measures messages/s through one stage of the bus (bus.Publish →
// bus.Consume with an acking handler) against raw JetStream publish/consume on
// the same embedded server in the same run, and prints BENCH lines.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench bus:", err)
		os.Exit(1)
	}
}

func run() error {
	n := 20000
	if v := os.Getenv("BENCH_BUS_MESSAGES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	dir, err := os.MkdirTemp("", "benchbus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := bus.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	ctx := context.Background()

	raw, err := rawJetStream(ctx, srv.URL(), n)
	if err != nil {
		return err
	}
	b, err := bus.Connect(ctx, bus.Config{URL: srv.URL(), DuplicateWindow: 2 * time.Minute, Retention: time.Hour, MaxDeliver: 5,
		AckWait: 30 * time.Second, BackoffBase: time.Second, BackoffMax: time.Minute, DrainTimeout: 10 * time.Second},
		bus.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer b.Drain()
	start := time.Now()
	for i := 0; i < n; i++ {
		id := strconv.Itoa(i)
		if err := bus.Publish(ctx, b, bus.EmailsIngested, id, bus.EmailIngested{EmailID: id}); err != nil {
			return err
		}
	}
	var got atomic.Int64
	done := make(chan struct{})
	c, err := bus.Consume(ctx, b, bus.EmailsIngested, bus.ConsumeOptions{Durable: "bench", Concurrency: 64}, func(ctx context.Context, m bus.EmailIngested) error {
		if got.Add(1) == int64(n) {
			close(done)
		}
		return nil
	})
	if err != nil {
		return err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("bus stage consumed %d of %d", got.Load(), n)
	}
	stage := float64(n) / time.Since(start).Seconds()
	c.Stop()
	fmt.Printf("BENCH bus_stage_publish_consume %.0f msgs/s\n", stage)
	fmt.Printf("BENCH raw_jetstream_publish_consume %.0f msgs/s\n", raw)
	fmt.Printf("BENCH bus_stage_vs_raw_ratio %.2f ratio\n", stage/raw)
	return nil
}

// rawJetStream publishes n messages synchronously and consumes them with a
// pull consumer acking each one: the floor the bus adds its envelope, tracing
// and runner to.
func rawJetStream(ctx context.Context, url string, n int) (float64, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := js.Publish(ctx, "raw.x", []byte(`{"email_id":"`+strconv.Itoa(i)+`"}`), jetstream.WithMsgID(strconv.Itoa(i))); err != nil {
			return 0, err
		}
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	for i := 0; i < n; i++ {
		m, err := it.Next()
		if err != nil {
			return 0, err
		}
		if err := m.Ack(); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
