package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestImportRunsAreFencedAndOnlyStaleOnesAreTakenOverOrFailed(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	if _, err := db.ClaimImport(ctx, "none", "r0", "none", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of a missing import: %v, want ErrNotFound", err)
	}
	if err := db.CreateImport(ctx, "imp", "a.mbox", store.ImportQueued, 10); err != nil {
		t.Fatal(err)
	}
	if n, err := db.ClaimImport(ctx, "imp", "r1", "obj", time.Minute); err != nil || n != 1 {
		t.Fatalf("first claim: attempt %d, %v", n, err)
	}
	if _, err := db.ClaimImport(ctx, "imp", "r2", "obj", time.Minute); !errors.Is(err, store.ErrImportBusy) {
		t.Fatalf("claim while r1 is alive: %v, want ErrImportBusy", err)
	}
	if stale, err := db.StaleImports(ctx, time.Minute); err != nil || len(stale) != 0 {
		t.Fatalf("live run declared stale: %+v %v", stale, err)
	}
	if won, err := db.FailStaleImport(ctx, "imp", time.Minute, "retrying"); err != nil || won {
		t.Fatalf("live run failed: %v %v", won, err)
	}
	// r1 goes silent: a redelivery takes over, and r1 can no longer write.
	db.Pool.Exec(ctx, `UPDATE imports SET heartbeat_at = now() - interval '2 minutes'`)
	if n, err := db.ClaimImport(ctx, "imp", "r2", "obj", time.Minute); err != nil || n != 2 {
		t.Fatalf("takeover: attempt %d, %v", n, err)
	}
	if err := db.HeartbeatImport(ctx, "imp", "r1", store.ImportProgress{}); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("heartbeat of the replaced run: %v, want ErrRunSuperseded", err)
	}
	if err := db.FinishImportRun(ctx, "imp", "r1", store.ImportProgress{}, store.ImportDone, ""); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("finish by the replaced run: %v, want ErrRunSuperseded", err)
	}
	// r2 goes silent too: the sweep fails it with the reason, once.
	db.Pool.Exec(ctx, `UPDATE imports SET heartbeat_at = now() - interval '2 minutes'`)
	stale, err := db.StaleImports(ctx, time.Minute)
	if err != nil || len(stale) != 1 || stale[0].ID != "imp" || stale[0].Object != "obj" || stale[0].Attempts != 2 {
		t.Fatalf("stale %+v %v", stale, err)
	}
	if won, err := db.FailStaleImport(ctx, "imp", time.Minute, "retrying"); err != nil || !won {
		t.Fatalf("fail stale: %v %v", won, err)
	}
	if won, _ := db.FailStaleImport(ctx, "imp", time.Minute, "retrying"); won {
		t.Fatal("failed twice")
	}
	im, err := db.GetImport(ctx, "imp")
	if err != nil || im.Status != store.ImportFailed || !strings.HasPrefix(im.Error, "the import stopped responding") || !strings.HasSuffix(im.Error, "; retrying") {
		t.Fatalf("import %+v %v", im, err)
	}
	if err := db.HeartbeatImport(ctx, "imp", "r2", store.ImportProgress{}); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("heartbeat of the failed run: %v, want ErrRunSuperseded", err)
	}
	// The retry runs and finishes; later requests are no-ops.
	if n, err := db.ClaimImport(ctx, "imp", "r3", "obj", time.Minute); err != nil || n != 3 {
		t.Fatalf("retry claim: attempt %d, %v", n, err)
	}
	if err := db.FinishImportRun(ctx, "imp", "r3", store.ImportProgress{Messages: 4, Imported: 4}, store.ImportDone, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimImport(ctx, "imp", "r4", "obj", time.Minute); !errors.Is(err, store.ErrImportFinished) {
		t.Fatalf("claim of a done import: %v, want ErrImportFinished", err)
	}
}
