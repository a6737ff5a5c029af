package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// seen counts handler effects per key, like a consumer that upserts by key.
type seen struct {
	mu    sync.Mutex
	count map[string]int
}

func (s *seen) add(k string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == nil {
		s.count = map[string]int{}
	}
	s.count[k]++
	return s.count[k]
}

func (s *seen) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func publishN(t *testing.T, b *bus.Bus, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("e%03d", i)
		if err := bus.Publish(context.Background(), b, bus.EmailsIngested, id, bus.EmailIngested{EmailID: id}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPublishDedupesByMsgID(t *testing.T) {
	b := testkit.NATS(t, nil)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := bus.Publish(ctx, b, bus.EmailsIngested, "same-id", bus.EmailIngested{EmailID: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := emailStreamMsgs(t, b); got != 1 {
		t.Fatalf("stream holds %d messages, want 1", got)
	}
}

func TestSameKeyOnAnotherSubjectIsNotADuplicate(t *testing.T) {
	b := testkit.NATS(t, nil)
	ctx := context.Background()
	if err := bus.Publish(ctx, b, bus.EmailsIngested, "e1", bus.EmailIngested{EmailID: "e1"}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, b, bus.EmailsEmbedded, "e1", bus.EmailEmbedded{EmailID: "e1"}); err != nil {
		t.Fatal(err)
	}
	if got := emailStreamMsgs(t, b); got != 2 {
		t.Fatalf("stream holds %d messages, want 2", got)
	}
}

func TestPublishRejectsEmptyMsgID(t *testing.T) {
	b := testkit.NATS(t, nil)
	err := bus.Publish(context.Background(), b, bus.EmailsIngested, "", bus.EmailIngested{EmailID: "x"})
	if !errors.Is(err, bus.ErrPublish) {
		t.Fatalf("err = %v, want ErrPublish", err)
	}
}

func TestConsumeDeliversEveryMessageOnce(t *testing.T) {
	b := testkit.NATS(t, nil)
	publishN(t, b, 200)
	var s seen
	c, err := bus.Consume(context.Background(), b, bus.EmailsIngested, bus.ConsumeOptions{Durable: "t", Concurrency: 8},
		func(ctx context.Context, m bus.EmailIngested) error { s.add(m.EmailID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	testkit.Eventually(t, 20*time.Second, func() bool { return s.len() == 200 }, "got %d of 200", s.len())
	for k, n := range s.count {
		if n != 1 {
			t.Errorf("%s handled %d times", k, n)
		}
	}
}

func TestConsumeRetriesTransientErrors(t *testing.T) {
	b := testkit.NATS(t, nil)
	publishN(t, b, 1)
	var calls atomic.Int32
	done := make(chan struct{})
	c, err := bus.Consume(context.Background(), b, bus.EmailsIngested, bus.ConsumeOptions{Durable: "t"},
		func(ctx context.Context, m bus.EmailIngested) error {
			if calls.Add(1) < 3 {
				return errors.New("database briefly away")
			}
			close(done)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("handler succeeded never; calls = %d", calls.Load())
	}
}

// A consumer stopped while holding unacknowledged messages loses nothing: a new
// consumer on the same durable gets them again, and an idempotent handler ends
// with each effect once.
func TestStoppedConsumerMessagesAreRedeliveredWithoutDuplicateEffect(t *testing.T) {
	cfg := testkit.BusConfig(testkit.NATSURL(t))
	cfg.AckWait = 1 * time.Second
	cfg.DrainTimeout = 200 * time.Millisecond
	b := testkit.Connect(t, cfg, nil)
	publishN(t, b, 20)

	db := testkit.DB(t)
	ctx := context.Background()
	// The effect is an upsert into a real table, as the stages do.
	effect := func(ctx context.Context, id string) error {
		_, err := db.Pool.Exec(ctx, `INSERT INTO sources (id, kind) VALUES ($1, 'test') ON CONFLICT (id) DO NOTHING`, id)
		return err
	}

	var handled atomic.Int32
	block := make(chan struct{})
	first, err := bus.Consume(ctx, b, bus.EmailsIngested, bus.ConsumeOptions{Durable: "stage", Concurrency: 4},
		func(ctx context.Context, m bus.EmailIngested) error {
			if handled.Add(1) > 5 {
				select { // hang mid-batch: these never ack
				case <-block:
				case <-ctx.Done():
				}
				return ctx.Err()
			}
			return effect(ctx, m.EmailID)
		})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return handled.Load() >= 9 }, "first consumer took %d", handled.Load())
	first.Stop() // drain times out; the held messages are not acked
	close(block)

	var s seen
	second, err := bus.Consume(ctx, b, bus.EmailsIngested, bus.ConsumeOptions{Durable: "stage", Concurrency: 4},
		func(ctx context.Context, m bus.EmailIngested) error { s.add(m.EmailID); return effect(ctx, m.EmailID) })
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()
	var rows int
	testkit.Eventually(t, 20*time.Second, func() bool {
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM sources`).Scan(&rows)
		return rows == 20
	}, "rows = %d, want 20", rows)
	if s.len() == 0 {
		t.Fatal("second consumer received nothing: the first consumer's unacked messages were not redelivered")
	}
}

func TestPoisonMessageGoesToDeadLettersWhileTheRestFlow(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	publishN(t, b, 10)
	// A payload that is not even JSON, and one that makes the handler fail for good.
	if _, err := b.JetStream().PublishMsg(ctx, &nats.Msg{Subject: bus.EmailsIngested.Subject, Data: []byte("{not json"),
		Header: nats.Header{bus.HeaderMsgID: []string{"garbage"}}}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, b, bus.EmailsIngested, "poison", bus.EmailIngested{EmailID: "poison"}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, b, bus.EmailsIngested, "flaky", bus.EmailIngested{EmailID: "flaky"}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, b, bus.EmailsIngested, "panics", bus.EmailIngested{EmailID: "panics"}); err != nil {
		t.Fatal(err)
	}
	var s seen
	c, err := bus.Consume(ctx, b, bus.EmailsIngested, bus.ConsumeOptions{Durable: bus.ConsumerEmbedder, Concurrency: 4},
		func(ctx context.Context, m bus.EmailIngested) error {
			switch m.EmailID {
			case "poison":
				return bus.Permanent(errors.New("mail is not parseable"))
			case "flaky":
				return errors.New("always times out")
			case "panics":
				var p *struct{ x int }
				_ = p.x
			}
			s.add(m.EmailID)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	var dls []store.DeadLetter
	testkit.Eventually(t, 20*time.Second, func() bool {
		dls, _ = db.ListDeadLetters(ctx, "", 10)
		return len(dls) == 4 && s.len() == 10
	}, "dead letters %d (want 4), handled %d (want 10)", len(dls), s.len())
	byID := map[string]store.DeadLetter{}
	for _, d := range dls {
		k := d.Key
		if k == "" {
			k = d.MsgID // the undecodable message has no key
		}
		byID[k] = d
	}
	for _, tc := range []struct {
		msgID, errContains string
		attempts           int
	}{
		{"garbage", "decode envelope", 1},
		{"poison", "mail is not parseable", 1},
		{"flaky", "always times out", 3},
		{"panics", "handler panic", 1},
	} {
		d, ok := byID[tc.msgID]
		if !ok {
			t.Errorf("%s: no dead letter", tc.msgID)
			continue
		}
		if !strings.Contains(d.Error, tc.errContains) || d.Attempts != tc.attempts || d.Stage != bus.ConsumerEmbedder {
			t.Errorf("%s: dead letter %+v, want error containing %q after %d attempts", tc.msgID, d, tc.errContains, tc.attempts)
		}
	}
}

// emailStreamMsgs returns how many messages the emails stream holds.
func emailStreamMsgs(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, bus.StreamEmails)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return si.State.Msgs
}
