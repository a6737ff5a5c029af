package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestReplacedCredentialsSupersedeTheRunningSync(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	newSource(t, db, "s", store.SourceIMAP, "u@h")
	c, err := db.ClaimDueSource(ctx, "run-1", []string{store.SourceIMAP})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetRunSecret(ctx, "s", c.RunID, []byte("refreshed")); err != nil {
		t.Fatalf("run holding its claim: %v", err)
	}
	s, err := db.ReplaceSourceCredentials(ctx, "s", json.RawMessage(`{"auth":"xoauth2"}`), []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]string
	if err := json.Unmarshal(s.Config, &cfg); err != nil || s.Status != store.SourceIdle || cfg["auth"] != "xoauth2" {
		t.Fatalf("after replace: status %s config %s", s.Status, s.Config)
	}
	if err := db.SetRunSecret(ctx, "s", c.RunID, []byte("stale refresh")); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("old run wrote its secret: %v", err)
	}
	if err := db.HeartbeatRun(ctx, "s", c.RunID, nil); !errors.Is(err, store.ErrRunSuperseded) {
		t.Fatalf("old run still holds its claim: %v", err)
	}
	if got, _ := db.SourceSecret(ctx, "s"); string(got) != "new" {
		t.Fatalf("secret = %q, want the replaced one", got)
	}
	if _, err := db.ReplaceSourceCredentials(ctx, "nope", json.RawMessage(`{}`), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown source: %v", err)
	}
}
