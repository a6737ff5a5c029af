package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMigrateSaysWhatIsPendingBeforeApplyingIt(t *testing.T) {
	url := testkit.DatabaseURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// An install one migration behind, below the newest (out of order).
	if _, err := conn.Exec(ctx, `ALTER TABLE email_origins DROP COLUMN listed_sync;
		DELETE FROM goose_db_version WHERE version_id = 130`); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if err := store.Migrate(ctx, url, log); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	before, after, ok := strings.Cut(out, "migration applied")
	if !ok || !strings.Contains(before, "applying migrations") || !strings.Contains(before, "00130_origin_listed_sync.sql") || !strings.Contains(after, "00130_origin_listed_sync.sql") {
		t.Errorf("log:\n%s\nwant the pending migration named before it is applied, then applied", out)
	}
	logs.Reset()
	if err := store.Migrate(ctx, url, log); err != nil || logs.Len() != 0 {
		t.Errorf("up to date: %v, log %q; want nothing to say", err, logs.String())
	}
}
