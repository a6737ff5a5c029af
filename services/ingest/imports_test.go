package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/ingest/intake"
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

// nopRecorder drops an import's progress and message errors.
type nopRecorder struct{}

func (nopRecorder) Progress(context.Context, intake.Progress) error { return nil }
func (nopRecorder) MessageError(context.Context, *mailparse.RawMessage, error) error {
	return nil
}

// failingPublisher stands in for a bus whose acks never came back.
type failingPublisher struct{}

func (failingPublisher) PublishIngested(context.Context, *intake.Email) error {
	return errors.New("acks lost")
}

func (failingPublisher) PublishIngestedBatch(context.Context, []*intake.Email) error {
	return errors.New("acks lost")
}

func TestChunkStoredButNeverPublishedIsPublishedByTheRerunAndAThirdImportIsANoOp(t *testing.T) {
	e := newEnv(t, testConfig())
	data := syntheticMbox(t, 40)
	ctx := context.Background()
	// A first run stores its chunks, then loses the publish acks (or dies).
	if err := e.db.CreateImport(ctx, "imp1", "a.mbox", store.ImportQueued, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	proc := intake.New(&emailStore{db: e.db}, failingPublisher{}, mailparse.Options{})
	origin := func(rm *mailparse.RawMessage) intake.Origin {
		return intake.Origin{ImportID: "imp1", ExternalID: fmt.Sprintf("a.mbox#%d", rm.Index)}
	}
	_, err := intake.ImportStream(ctx, mailparse.NewMboxReader(bytes.NewReader(data), mailparse.ReaderOptions{}), proc, origin,
		nopRecorder{}, intake.StreamOptions{Workers: 2, ChunkMessages: 8})
	if err == nil || !strings.Contains(err.Error(), "acks lost") {
		t.Fatalf("first run: %v, want the publish failure", err)
	}
	stored := e.emails()
	if stored == 0 || e.ingested() != 0 {
		t.Fatalf("first run stored %d emails and published %d; want some stored, none published", stored, e.ingested())
	}
	var marked int
	e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM emails WHERE published_at IS NOT NULL`).Scan(&marked)
	if marked != 0 {
		t.Fatalf("%d emails marked published although no ack came", marked)
	}
	// The rerun (here: the service importing the same file) publishes all of them once.
	e.start()
	e.upload("imp2", "a.mbox", data)
	im := e.waitImport("imp2")
	if im.Status != store.ImportDone || im.Imported != 40 || e.emails() != 40 || e.ingested() != 40 {
		t.Fatalf("rerun %+v, emails %d, published %d", im, e.emails(), e.ingested())
	}
	e.upload("imp3", "a.mbox", data)
	im = e.waitImport("imp3")
	if im.Imported != 0 || im.Duplicates != 40 || e.ingested() != 40 {
		t.Fatalf("third import %+v, published %d", im, e.ingested())
	}
}
