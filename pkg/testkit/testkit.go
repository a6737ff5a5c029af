// Package testkit gives tests real infrastructure of their own: a PostgreSQL
// server (with pgvector) started once per test process, a fresh migrated
// database per test, and an embedded JetStream server per test. Nothing depends
// on a server someone else left running.
//
// A package whose tests need the database declares:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
package testkit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/pgserver"
	"github.com/ownyou/home/pkg/store"
)

const templateDB = "ownyou_template"

// pg is the process's Postgres server, set by Main. Test support is the one
// place a package-level variable is the right tool: TestMain has no other way
// to hand the server to the tests.
var pg struct {
	mu     sync.Mutex
	server *pgserver.Server
	err    error
	dir    string
	seq    atomic.Int64
}

// Main starts a private Postgres for the test process, runs the tests and stops
// the server; it calls os.Exit with the tests' result.
func Main(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "oypg-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testkit: temp dir:", err)
		return 1
	}
	pg.dir = dir
	defer os.RemoveAll(dir)
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "128MB"}})
	if err == nil {
		err = srv.CreateDatabase(ctx, templateDB, "")
	}
	if err == nil {
		err = store.Migrate(ctx, srv.URL(templateDB), slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	pg.server, pg.err = srv, err
	code := m.Run()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testkit:", err)
		}
	}
	return code
}

// DatabaseURL creates a fresh database with every migration applied and
// returns its URL; it is dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	if pg.server == nil && pg.err == nil {
		t.Fatal("testkit: no Postgres: the package needs func TestMain(m *testing.M) { testkit.Main(m) }")
	}
	if pg.err != nil {
		t.Fatalf("testkit: postgres did not start: %v", pg.err)
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), pg.seq.Add(1))
	ctx := context.Background()
	pg.mu.Lock() // CREATE DATABASE … TEMPLATE needs the template to be idle
	err := pg.server.CreateDatabase(ctx, name, templateDB)
	pg.mu.Unlock()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), pg.server.URL("postgres"))
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return pg.server.URL(name)
}

// DB opens a fresh migrated database for the test; it is closed and dropped
// when the test ends.
func DB(t testing.TB) *store.DB {
	t.Helper()
	url := DatabaseURL(t)
	db, err := store.Open(context.Background(), store.Config{URL: url, MaxConns: 20}, Logger(t))
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// NATSURL starts an embedded JetStream server with its store in a temp dir and
// returns its URL; it is shut down when the test ends.
func NATSURL(t testing.TB) string {
	t.Helper()
	srv, err := bus.StartEmbedded(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv.URL()
}

// BusConfig is a bus configuration with short retry delays for tests.
func BusConfig(url string) bus.Config {
	return bus.Config{
		URL:             url,
		DuplicateWindow: 2 * time.Minute,
		Retention:       time.Hour,
		MaxDeliver:      3,
		AckWait:         5 * time.Second,
		BackoffBase:     50 * time.Millisecond,
		BackoffMax:      500 * time.Millisecond,
		DrainTimeout:    5 * time.Second,
	}
}

// NATS starts an embedded JetStream server and returns a bus connected to it
// with test retry settings; dead letters are recorded in rec when it is not nil.
func NATS(t testing.TB, rec bus.DeadLetterRecorder) *bus.Bus {
	t.Helper()
	return Connect(t, BusConfig(NATSURL(t)), rec)
}

// Connect connects a bus to an existing server for the test.
func Connect(t testing.TB, cfg bus.Config, rec bus.DeadLetterRecorder) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, cfg, bus.Options{Log: Logger(t), DeadLetter: rec, Name: t.Name()})
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(func() { _ = b.Drain() })
	return b
}

// Logger returns a logger that writes through t.Log (warnings and above unless
// OWNYOU_TEST_LOG=debug), so output shows only for failing tests.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("OWNYOU_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended is dropped
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// RepoRoot returns the repository's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedDir returns the offline data directory (IAB taxonomies, tokenizer
// files): $OWNYOU_SHARED_DIR, else ../shared beside the repository. A missing
// directory fails the test: CI always has it.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("OWNYOU_SHARED_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("testkit: shared data dir %s: %v (set OWNYOU_SHARED_DIR)", dir, err)
	}
	return dir
}

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %v: "+msg, append([]any{timeout}, args...)...)
}

// Runner is what Run runs: a service's Run, which returns once ctx is done.
type Runner interface {
	Run(ctx context.Context) error
}

// Run runs svc in the background until the returned stop — also a test
// cleanup, safe to call more than once — cancels it and waits for Run to
// return (failing the test if it errs or does not stop within 30 s).
func Run(t testing.TB, svc Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("service did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
