package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/testkit"
)

func TestPublishBatchStoresEveryMessageOnceAndARepeatDedupes(t *testing.T) {
	b := testkit.NATS(t, nil)
	ctx := context.Background()
	items := make([]bus.Keyed[bus.EmailIngested], 50)
	for i := range items {
		id := fmt.Sprintf("e%03d", i)
		items[i] = bus.Keyed[bus.EmailIngested]{Key: id, V: bus.EmailIngested{EmailID: id}}
	}
	for range 2 {
		if err := bus.PublishBatch(ctx, b, bus.EmailsIngested, items); err != nil {
			t.Fatal(err)
		}
	}
	// The repeat after a plain Publish of one of them dedupes too.
	if err := bus.Publish(ctx, b, bus.EmailsIngested, "e007", bus.EmailIngested{EmailID: "e007"}); err != nil {
		t.Fatal(err)
	}
	if got := emailStreamMsgs(t, b); got != 50 {
		t.Fatalf("stream holds %d messages, want 50", got)
	}
	// Consumers read the batch's messages like any other.
	got := &seen{}
	c, err := bus.Consume(ctx, b, bus.EmailsIngested, bus.ConsumeOptions{Durable: "batch-test"}, func(_ context.Context, m bus.EmailIngested) error {
		got.add(m.EmailID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	testkit.Eventually(t, 10*time.Second, func() bool { return got.len() == 50 }, "consumed %d of 50", got.len())
}

func TestPublishBatchRejectsAnEmptyKeyBeforeSending(t *testing.T) {
	b := testkit.NATS(t, nil)
	err := bus.PublishBatch(context.Background(), b, bus.EmailsIngested, []bus.Keyed[bus.EmailIngested]{{Key: "", V: bus.EmailIngested{}}})
	if !errors.Is(err, bus.ErrPublish) {
		t.Fatalf("err = %v, want ErrPublish", err)
	}
}

func TestPublishBatchFailsWhenTheBusIsGone(t *testing.T) {
	b := testkit.NATS(t, nil)
	b.Conn().Close()
	err := bus.PublishBatch(context.Background(), b, bus.EmailsIngested, []bus.Keyed[bus.EmailIngested]{{Key: "e1", V: bus.EmailIngested{EmailID: "e1"}}})
	if !errors.Is(err, bus.ErrPublish) {
		t.Fatalf("err = %v, want ErrPublish", err)
	}
}
