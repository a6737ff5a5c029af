package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func newSource(t *testing.T, db *store.DB, id, kind, account string) store.Source {
	t.Helper()
	s, err := db.CreateSource(context.Background(), store.Source{ID: id, Kind: kind, Account: account, Name: account}, []byte("sealed"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSourceLifecycle(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	s := newSource(t, db, "src1", store.SourceGmail, "me@example.com")
	if s.Status != store.SourceIdle || !s.HasSecret || s.NextSyncAt == nil {
		t.Fatalf("created %+v", s)
	}
	if _, err := db.CreateSource(ctx, store.Source{ID: "src2", Kind: store.SourceGmail, Account: "me@example.com"}, nil); !errors.Is(err, store.ErrSourceExists) {
		t.Fatalf("duplicate account: err = %v", err)
	}

	c, err := db.ClaimDueSource(ctx, "run-1", []string{store.SourceGmail})
	if err != nil || c.Source.ID != "src1" || c.Source.Status != store.SourceSyncing || string(c.Secret) != "sealed" {
		t.Fatalf("claim: %+v %v", c, err)
	}
	if _, err := db.ClaimDueSource(ctx, "run-2", []string{store.SourceGmail}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second claim of a syncing source: %v", err)
	}
	if err := db.SaveSourceCursor(ctx, "src1", "run-1", map[string]int{"history_id": 42}); err != nil {
		t.Fatal(err)
	}
	if err := db.HeartbeatRun(ctx, "src1", "run-1", map[string]int{"delivered": 3}); err != nil {
		t.Fatal(err)
	}
	if err := db.HeartbeatRun(ctx, "src1", "run-other", nil); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("foreign heartbeat: %v", err)
	}
	next := time.Now().Add(time.Hour)
	if err := db.FinishRun(ctx, "src1", "run-1", store.RunOutcome{Status: store.SourceIdle, NextSyncAt: next, Stats: map[string]int{"delivered": 3}}); err != nil {
		t.Fatal(err)
	}
	got, _ := db.GetSource(ctx, "src1")
	if got.Status != store.SourceIdle || got.LastSuccessAt == nil || string(got.Cursor) != `{"history_id": 42}` {
		t.Fatalf("after run: %+v cursor %s", got, got.Cursor)
	}
	if _, err := db.ClaimDueSource(ctx, "run-3", []string{store.SourceGmail}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claimed before next_sync_at: %v", err)
	}
	if _, err := db.RequestSync(ctx, "src1", false); err != nil {
		t.Fatal(err)
	}
	if c, err := db.ClaimDueSource(ctx, "run-4", []string{store.SourceGmail}); err != nil || c.RunID != "run-4" {
		t.Fatalf("requested sync not claimed: %v", err)
	}

	// Pausing mid-run stops the run at its next heartbeat and keeps it paused.
	if _, err := db.PauseSource(ctx, "src1"); err != nil {
		t.Fatal(err)
	}
	if err := db.HeartbeatRun(ctx, "src1", "run-4", nil); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("heartbeat of a paused run: %v", err)
	}
	if err := db.FinishRun(ctx, "src1", "run-4", store.RunOutcome{Status: store.SourceIdle, NextSyncAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetSource(ctx, "src1"); got.Status != store.SourcePaused {
		t.Fatalf("status %s, want paused", got.Status)
	}
	if _, err := db.ClaimDueSource(ctx, "run-5", []string{store.SourceGmail}); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("paused source claimed")
	}
	if s, err := db.ResumeSource(ctx, "src1"); err != nil || s.Status != store.SourceIdle {
		t.Fatalf("resume: %+v %v", s, err)
	}
}

func TestStaleRunIsFailedWithReasonAndRetried(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	newSource(t, db, "s", store.SourceIMAP, "a@b")
	if _, err := db.ClaimDueSource(ctx, "dead-run", []string{store.SourceIMAP}); err != nil {
		t.Fatal(err)
	}
	if ids, err := db.FailStaleRuns(ctx, time.Hour, 0); err != nil || len(ids) != 0 {
		t.Fatalf("fresh run failed as stale: %v %v", ids, err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE sources SET heartbeat_at = now() - interval '10 minutes'`); err != nil {
		t.Fatal(err)
	}
	ids, err := db.FailStaleRuns(ctx, 5*time.Minute, 0)
	if err != nil || len(ids) != 1 {
		t.Fatalf("stale: %v %v", ids, err)
	}
	s, _ := db.GetSource(ctx, "s")
	if s.Status != store.SourceFailed || s.LastError == "" || s.ErrorsCount != 1 {
		t.Fatalf("after stale: %+v", s)
	}
	// The dead run can no longer write; a new run is claimed.
	if err := db.SaveSourceCursor(ctx, "s", "dead-run", map[string]int{}); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("dead run wrote its cursor: %v", err)
	}
	if c, err := db.ClaimDueSource(ctx, "new-run", []string{store.SourceIMAP}); err != nil || c.RunID != "new-run" {
		t.Fatalf("retry claim: %v", err)
	}
}

func TestSourceFailuresBackOffAndClear(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	newSource(t, db, "s", store.SourceGmail, "x@y")
	if err := db.RecordSourceFailure(ctx, "s", "m1", "500 backend", false); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSourceFailure(ctx, "s", "m2", "too large", true); err != nil {
		t.Fatal(err)
	}
	if ids, _ := db.DueSourceFailures(ctx, "s", "", 10); len(ids) != 0 {
		t.Fatalf("failure due before its backoff: %v", ids)
	}
	db.Pool.Exec(ctx, `UPDATE source_failures SET next_retry_at = now() - interval '1 second'`)
	ids, _ := db.DueSourceFailures(ctx, "s", "", 10)
	if len(ids) != 1 || ids[0] != "m1" {
		t.Fatalf("due = %v, want only the retryable m1", ids)
	}
	if err := db.RecordSourceFailure(ctx, "s", "m1", "500 again", false); err != nil {
		t.Fatal(err)
	}
	list, _ := db.ListSourceFailures(ctx, "s", 10)
	if len(list) != 2 {
		t.Fatalf("list %+v", list)
	}
	for _, f := range list {
		if f.ExternalID == "m1" && (f.Attempts != 2 || time.Until(f.NextRetryAt) < time.Minute) {
			t.Fatalf("second failure did not back off: %+v", f)
		}
	}
	if err := db.ClearSourceFailure(ctx, "s", "m1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := db.ListSourceFailures(ctx, "s", 10); len(list) != 1 {
		t.Fatalf("after clear %+v", list)
	}
}

func TestDeleteSourceKeepsOrPurgesMail(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	newSource(t, db, "a", store.SourceGmail, "a@x")
	newSource(t, db, "b", store.SourceIMAP, "b@x")
	add := func(id, src string) {
		t.Helper()
		if _, err := db.InsertEmail(ctx, store.Email{ID: id, SourceID: src, MessageID: id, ContentHash: id}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AddEmailOrigin(ctx, store.EmailOrigin{EmailID: id, SourceID: src, ExternalID: id}); err != nil {
			t.Fatal(err)
		}
	}
	add("only-a", "a")
	add("shared", "a")
	if _, err := db.AddEmailOrigin(ctx, store.EmailOrigin{EmailID: "shared", SourceID: "b", ExternalID: "x"}); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.GetSource(ctx, "a"); s.EmailsCount != 2 {
		t.Fatalf("emails_count = %d", s.EmailsCount)
	}
	n, err := db.DeleteSource(ctx, "a", true)
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want only the unshared email", n, err)
	}
	if _, err := db.GetEmail(ctx, "shared"); err != nil {
		t.Fatal("shared email deleted")
	}
	if _, err := db.DeleteSource(ctx, "b", false); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetEmail(ctx, "shared"); err != nil {
		t.Fatal("mail deleted although not asked")
	}
	if _, err := db.DeleteSource(ctx, "b", false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestOAuthStateIsSingleUse(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	if err := db.SaveOAuthState(ctx, "st", "google", "ver", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, v, _, err := db.TakeOAuthState(ctx, "st"); err != nil || v != "ver" {
		t.Fatalf("take: %q %v", v, err)
	}
	if _, _, _, err := db.TakeOAuthState(ctx, "st"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("state reused: %v", err)
	}
	db.SaveOAuthState(ctx, "old", "google", "v", "", -time.Minute)
	if _, _, _, err := db.TakeOAuthState(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired state accepted: %v", err)
	}
}
