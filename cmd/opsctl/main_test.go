package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// TestDocumentedBackupAndRestore follows docs/deploy.md: opsctl backup, data
// lost, opsctl restore latest, data back.
func TestDocumentedBackupAndRestore(t *testing.T) {
	url := testkit.DatabaseURL(t)
	t.Setenv("DATABASE_URL", url)
	t.Setenv("OWNYOU_BACKUP_DIR", filepath.Join(t.TempDir(), "backups"))
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: url}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO emails (id, message_id, content_hash, sort_at) VALUES ('e1','m1','h1',now())`); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"backup"}, &out); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(out.String()), ".dump") {
		t.Errorf("backup printed %q, want the file", out.String())
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM emails`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out.Reset()
	if err := run(ctx, []string{"restore", "latest"}, &out); err != nil {
		t.Fatalf("restore: %v", err)
	}
	db, err = store.Open(ctx, store.Config{URL: url}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM emails WHERE id = 'e1'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("after restore: %d rows, %v; want e1 back", n, err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"restore"}} {
		if err := run(context.Background(), args, &bytes.Buffer{}); err == nil {
			t.Errorf("opsctl %v succeeded", args)
		}
	}
}
