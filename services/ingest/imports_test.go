package ingest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// putUpload stores data in the imports bucket and an import record for it,
// without requesting the import (as if the request was lost or dead-lettered).
func (e *env) putUpload(id, name string, data []byte) {
	e.t.Helper()
	ctx := context.Background()
	objs, err := e.bus.ImportObjects(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := objs.Put(ctx, jetstreamMeta(id), bytes.NewReader(data)); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.CreateImport(ctx, id, name, store.ImportQueued, int64(len(data))); err != nil {
		e.t.Fatal(err)
	}
}

// deadRun makes id look like an import whose process died mid-run: claimed
// by a run that stopped heartbeating long ago.
func (e *env) deadRun(id string) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.db.ClaimImport(ctx, id, "dead-run", id, time.Minute); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE imports SET heartbeat_at = now() - interval '10 minutes', messages = 7 WHERE id = $1`, id); err != nil {
		e.t.Fatal(err)
	}
}

func syntheticMbox(t *testing.T, n int) []byte {
	var b bytes.Buffer
	if err := mailparse.WriteSyntheticMbox(&b, n, 11); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestStalledImportIsFailedAndRetriedWhileItsUploadIsThere(t *testing.T) {
	cfg := testConfig()
	cfg.ImportAttempts = 3
	e := newEnv(t, cfg)
	e.putUpload("stuck", "a.mbox", syntheticMbox(t, 30))
	e.deadRun("stuck")
	e.start()
	im := e.waitImport("stuck")
	if im.Status != store.ImportDone || im.Imported != 30 || im.Error != "" {
		t.Fatalf("import %+v, want done by the retry", im)
	}
	var attempts int
	var runID string
	e.db.Pool.QueryRow(context.Background(), `SELECT attempts, run_id FROM imports WHERE id = 'stuck'`).Scan(&attempts, &runID)
	if attempts != 2 || runID != "" {
		t.Fatalf("attempts %d run %q, want the dead run plus one retry, released", attempts, runID)
	}
	// The dead run can no longer write.
	if err := e.db.HeartbeatImport(context.Background(), "stuck", "dead-run", store.ImportProgress{}); err == nil {
		t.Fatal("dead run still holds the import")
	}
}

func TestStalledImportIsLeftFailedWithTheReason(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		upload     bool
		attempts   int
	}{
		{name: "over the attempt limit", want: "gave up after 1 attempts", upload: true, attempts: 1},
		{name: "upload gone", want: "no longer available", upload: false, attempts: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ImportAttempts = tc.attempts
			e := newEnv(t, cfg)
			if tc.upload {
				e.putUpload("stuck", "a.mbox", syntheticMbox(t, 5))
			} else if err := e.db.CreateImport(context.Background(), "stuck", "a.mbox", store.ImportQueued, 10); err != nil {
				t.Fatal(err)
			}
			e.deadRun("stuck")
			e.start()
			im := e.waitImport("stuck")
			if im.Status != store.ImportFailed || !strings.Contains(im.Error, "stopped responding") || !strings.Contains(im.Error, tc.want) {
				t.Fatalf("import %+v, want failed: stopped responding … %s", im, tc.want)
			}
			if im.Messages != 7 {
				t.Fatalf("messages %d, want the dead run's last progress kept", im.Messages)
			}
			time.Sleep(5 * cfg.PollEvery)
			if again, _ := e.db.GetImport(context.Background(), "stuck"); again.Status != store.ImportFailed || e.emails() != 0 {
				t.Fatalf("import %+v, emails %d: retried although it must not be", again, e.emails())
			}
		})
	}
}

func TestImportThatFailsOnEveryDeliveryIsDeadLetteredAsFailed(t *testing.T) {
	db := testkit.DB(t)
	e := &env{t: t, db: db, bus: testkit.NATS(t, db), cfg: testConfig()}
	svc, err := New(e.cfg, app.Deps{Common: app.Common{DataDir: t.TempDir()}, DB: db, Bus: e.bus, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.start()
	e.upload("badzip", "mail.zip", []byte("this is not a zip archive"))
	im := e.waitImport("badzip")
	if im.Status != store.ImportFailed || !strings.Contains(im.Error, "gave up after 3 attempts") || !strings.Contains(im.Error, "zip") {
		t.Fatalf("import %+v, want failed with the attempts and the error", im)
	}
	var running int
	db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM imports WHERE status = 'running' OR run_id <> ''`).Scan(&running)
	if running != 0 {
		t.Fatalf("%d imports still hold a run", running)
	}
}
