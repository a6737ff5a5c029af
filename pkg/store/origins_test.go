package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestOriginLabelsAndDeletionsAreMirroredAndMailKept(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	newSource(t, db, "g", store.SourceGmail, "g@x")
	newSource(t, db, "i", store.SourceIMAP, "i@x")
	add := func(id, src, ext string, labels ...string) {
		t.Helper()
		if _, err := db.InsertEmail(ctx, store.Email{ID: id, SourceID: src, MessageID: id, ContentHash: id, Labels: labels}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AddEmailOrigin(ctx, store.EmailOrigin{EmailID: id, SourceID: src, ExternalID: ext, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}
	add("solo", "g", "m1", "INBOX", "UNREAD")
	add("both", "g", "m2", "INBOX")
	if _, err := db.AddEmailOrigin(ctx, store.EmailOrigin{EmailID: "both", SourceID: "i", ExternalID: "INBOX/1/1"}); err != nil {
		t.Fatal(err)
	}

	if n, err := db.SetOriginLabels(ctx, "g", "m1", []string{"INBOX", "STARRED"}); err != nil || n != 1 {
		t.Fatalf("relabel: %d, %v", n, err)
	}
	if e, _ := db.GetEmail(ctx, "solo"); fmt.Sprint(e.Labels) != "[INBOX STARRED]" {
		t.Fatalf("labels = %v", e.Labels)
	}
	if n, err := db.SetOriginLabels(ctx, "g", "m1", []string{"INBOX", "STARRED"}); err != nil || n != 0 {
		t.Fatalf("relabel with the same labels: %d, %v; want no change", n, err)
	}
	if n, err := db.SetOriginLabels(ctx, "g", "unknown", []string{"X"}); err != nil || n != 0 {
		t.Fatalf("relabel of a message never stored: %d, %v", n, err)
	}

	tests := []struct {
		name        string
		src, ext    string
		email       string
		wantMarked  int64
		wantDeleted bool
	}{
		{name: "deleted at its only source is kept and marked", src: "g", ext: "m1", email: "solo", wantMarked: 1, wantDeleted: true},
		{name: "deleting again changes nothing", src: "g", ext: "m1", email: "solo", wantMarked: 0, wantDeleted: true},
		{name: "deleted at one of two sources is not marked", src: "g", ext: "m2", email: "both", wantMarked: 1, wantDeleted: false},
		{name: "deleted at the last source is marked", src: "i", ext: "INBOX/1/1", email: "both", wantMarked: 1, wantDeleted: true},
		{name: "message never stored is a no-op", src: "g", ext: "nope", email: "solo", wantMarked: 0, wantDeleted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := db.MarkOriginDeleted(ctx, tc.src, tc.ext)
			if err != nil || n != tc.wantMarked {
				t.Fatalf("marked %d, %v; want %d", n, err, tc.wantMarked)
			}
			e, err := db.GetEmail(ctx, tc.email)
			if err != nil {
				t.Fatalf("email gone: %v", err)
			}
			if (e.DeletedAtSource != nil) != tc.wantDeleted {
				t.Fatalf("DeletedAtSource = %v, want set=%v", e.DeletedAtSource, tc.wantDeleted)
			}
		})
	}
	page, err := db.ListEmails(ctx, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Emails {
		if e.DeletedAtSource == nil {
			t.Errorf("list: %s not shown as deleted at source", e.ID)
		}
	}
}
