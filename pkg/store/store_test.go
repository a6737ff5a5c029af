package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func email(msgID, body string, sent time.Time) store.Email {
	return store.Email{MessageID: msgID, ContentHash: "h-" + body, Subject: "s " + msgID, BodyText: body, SentAt: &sent, Raw: []byte("raw " + body)}
}

func TestInsertEmailReportsWhatStillNeedsPublishing(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	e := email("a@x", "hello", time.Now())

	first, err := db.InsertEmail(ctx, e)
	if err != nil || !first {
		t.Fatalf("first insert: needsPublish=%v err=%v, want true", first, err)
	}
	again, err := db.InsertEmail(ctx, e)
	if err != nil || !again {
		t.Fatalf("insert before publish completed: needsPublish=%v err=%v, want true (the earlier publish may have been lost)", again, err)
	}
	if err := db.MarkPublished(ctx, store.EmailID(e.MessageID, e.ContentHash)); err != nil {
		t.Fatal(err)
	}
	after, err := db.InsertEmail(ctx, e)
	if err != nil || after {
		t.Fatalf("insert after publish: needsPublish=%v err=%v, want false", after, err)
	}
	raw, err := db.RawEmail(ctx, store.EmailID(e.MessageID, e.ContentHash))
	if err != nil || string(raw) != "raw hello" {
		t.Fatalf("raw = %q, %v; want the original bytes back", raw, err)
	}
}

func TestListEmailsPagesNewestFirstAndRejectsForeignCursors(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		// two emails share each timestamp: the id breaks the tie, so paging is stable
		for _, suffix := range []string{"a", "b"} {
			if _, err := db.InsertEmail(ctx, email(string(rune('0'+i))+suffix+"@x", suffix, base.Add(time.Duration(i)*time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	cursor := ""
	for {
		page, err := db.ListEmails(ctx, 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Emails {
			got = append(got, e.MessageID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(got) != 10 {
		t.Fatalf("listed %d emails across pages, want 10: %v", len(got), got)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s listed twice: %v", id, got)
		}
		seen[id] = true
	}
	if got[0][0] != '4' || got[9][0] != '0' {
		t.Fatalf("not newest first: %v", got)
	}
	if _, err := db.ListEmails(ctx, 3, "not-a-cursor!"); !errors.Is(err, store.ErrBadCursor) {
		t.Fatalf("bad cursor: err = %v, want ErrBadCursor", err)
	}
}

func TestDeadLetterMarksTheEmailFailedAtItsStage(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	e := email("dl@x", "body", time.Now())
	if _, err := db.InsertEmail(ctx, e); err != nil {
		t.Fatal(err)
	}
	id := store.EmailID(e.MessageID, e.ContentHash)
	dl := bus.DeadLetter{Stage: bus.ConsumerEmbedder, Subject: "emails.ingested", MsgID: "emails.ingested:" + id, Key: id,
		Payload: []byte(`{"v":1}`), Error: "model file corrupt", Attempts: 5}
	for i := 0; i < 2; i++ { // recorded twice (a redelivery): still one row
		if err := db.RecordDeadLetter(ctx, dl); err != nil {
			t.Fatal(err)
		}
	}
	list, err := db.ListDeadLetters(ctx, bus.ConsumerEmbedder, 10)
	if err != nil || len(list) != 1 || list[0].Error != "model file corrupt" {
		t.Fatalf("dead letters %+v, %v; want one with the error", list, err)
	}
	counts, err := db.PipelineCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		if c.Name == bus.ConsumerEmbedder && (c.Failed != 1 || c.Pending != 0) {
			t.Fatalf("embedder counts %+v, want 1 failed, 0 pending", c)
		}
	}
}
