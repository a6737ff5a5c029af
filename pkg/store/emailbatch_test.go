package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestInsertEmailsStoresAChunkWithOriginsAndReportsWhatNeedsPublishing(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	if err := db.CreateImport(ctx, "imp", "a.mbox", store.ImportQueued, 1); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, b := email("a@x", "alpha", now), email("b@x", "beta", now)
	w := func(e store.Email, ext string) store.EmailWrite {
		return store.EmailWrite{Email: e, Origin: store.EmailOrigin{ImportID: "imp", ExternalID: ext}}
	}
	// b appears twice in the chunk (the same mail twice in one file).
	needs, err := db.InsertEmails(ctx, []store.EmailWrite{w(b, "f#0"), w(a, "f#1"), w(b, "f#2")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false}; !slices.Equal(needs, want) {
		t.Fatalf("needsPublish = %v, want %v (b once)", needs, want)
	}
	var emails, origins int
	db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM emails), (SELECT count(*) FROM email_origins WHERE import_id = 'imp')`).Scan(&emails, &origins)
	if emails != 2 || origins != 3 {
		t.Fatalf("emails %d origins %d, want 2 and 3", emails, origins)
	}
	// Stored but never marked published: a rerun still needs the events.
	needs, err = db.InsertEmails(ctx, []store.EmailWrite{w(a, "f#1"), w(b, "f#0")})
	if err != nil || !slices.Equal(needs, []bool{true, true}) {
		t.Fatalf("rerun before publish: %v %v, want both", needs, err)
	}
	if err := db.MarkPublishedMany(ctx, []string{store.EmailID(a.MessageID, a.ContentHash)}); err != nil {
		t.Fatal(err)
	}
	needs, err = db.InsertEmails(ctx, []store.EmailWrite{w(a, "f#1"), w(b, "f#0")})
	if err != nil || !slices.Equal(needs, []bool{false, true}) {
		t.Fatalf("rerun after a was published: %v %v, want only b", needs, err)
	}
	raw, err := db.RawEmail(ctx, store.EmailID(a.MessageID, a.ContentHash))
	if err != nil || string(raw) != "raw alpha" {
		t.Fatalf("raw = %q, %v", raw, err)
	}
}

func TestInsertEmailsStoresNothingWhenOneRowFails(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	if err := db.CreateImport(ctx, "imp", "a.mbox", store.ImportQueued, 1); err != nil {
		t.Fatal(err)
	}
	good, bad := email("a@x", "alpha", time.Now()), email("b@x", "beta", time.Now())
	// Rows run in id order: make the failing row the last one, after the good one was written.
	if store.EmailID(good.MessageID, good.ContentHash) > store.EmailID(bad.MessageID, bad.ContentHash) {
		good, bad = bad, good
	}
	// An origin naming an import that does not exist violates its foreign key.
	_, err := db.InsertEmails(ctx, []store.EmailWrite{
		{Email: bad, Origin: store.EmailOrigin{ImportID: "no-such-import", ExternalID: "f#1"}},
		{Email: good, Origin: store.EmailOrigin{ImportID: "imp", ExternalID: "f#0"}},
	})
	if err == nil {
		t.Fatal("want the foreign key error")
	}
	var n int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM emails`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d emails stored by a failed chunk, want 0", n)
	}
}

func TestInsertEmailsKeepsListValuesExactly(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	if err := db.CreateImport(ctx, "imp", "a.mbox", store.ImportQueued, 1); err != nil {
		t.Fatal(err)
	}
	odd := []string{`a"b@x`, `back\slash@x`, "NULL", "", "{brace},comma", "ünï cödé", " spaced "}
	e := email("odd@x", "odd", time.Now())
	e.To, e.Cc, e.Warnings, e.Labels = odd, nil, []string{`warn "x"`}, odd
	e.Attachments = []store.Attachment{{Name: `r"é.pdf`, ContentType: "application/pdf", Size: 3}}
	if _, err := db.InsertEmails(ctx, []store.EmailWrite{{Email: e, Origin: store.EmailOrigin{ImportID: "imp", ExternalID: "f#0", Labels: odd}}}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetEmail(ctx, store.EmailID(e.MessageID, e.ContentHash))
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(got.To, odd) || len(got.Cc) != 0 || !equalStrings(got.Warnings, e.Warnings) || !equalStrings(got.Labels, odd) {
		t.Fatalf("to %q cc %q warnings %q labels %q", got.To, got.Cc, got.Warnings, got.Labels)
	}
	if len(got.Attachments) != 1 || got.Attachments[0] != e.Attachments[0] {
		t.Fatalf("attachments %+v", got.Attachments)
	}
	var originLabels []string
	if err := db.Pool.QueryRow(ctx, `SELECT labels FROM email_origins WHERE import_id = 'imp'`).Scan(&originLabels); err != nil || !equalStrings(originLabels, odd) {
		t.Fatalf("origin labels %q %v", originLabels, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
