// Package benchkit is what the benchmark programs in tools/bench share: a
// private Postgres and an embedded JetStream server in a temporary
// directory, and the process's memory figures.
package benchkit

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/pgserver"
	"github.com/ownyou/home/pkg/store"
)

// Infra is a benchmark's own Postgres (database "bench") and JetStream.
type Infra struct {
	Dir   string // the temporary directory everything lives in
	PGDir string // the Postgres data directory
	DB    *store.DB
	Bus   *bus.Bus
	Log   *slog.Logger

	pg *pgserver.Server
	ns *bus.EmbeddedServer
}

// Start starts Postgres on port (fsync off: figures are about the code, not
// the disk) and an embedded JetStream, both under a new temporary directory.
// Close stops them and removes it.
func Start(ctx context.Context, name string, port int) (*Infra, error) {
	inf := &Infra{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	dir, err := os.MkdirTemp("", "bench"+name+"-")
	if err != nil {
		return nil, err
	}
	inf.Dir, inf.PGDir = dir, filepath.Join(dir, "pg")
	// Postgres runs as its own user when we are root: it must reach its dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		inf.Close()
		return nil, err
	}
	if err := os.Mkdir(inf.PGDir, 0o755); err != nil {
		inf.Close()
		return nil, err
	}
	inf.pg, err = pgserver.Start(ctx, pgserver.Options{Dir: inf.PGDir, Port: port,
		Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}})
	if err == nil {
		err = inf.pg.CreateDatabase(ctx, "bench", "")
	}
	if err == nil {
		inf.DB, err = store.Open(ctx, store.Config{URL: inf.pg.URL("bench"), MaxConns: 10}, inf.Log)
	}
	if err == nil {
		inf.ns, err = bus.StartEmbedded(filepath.Join(dir, "nats"), "127.0.0.1:0")
	}
	if err == nil {
		inf.Bus, err = bus.Connect(ctx, bus.Config{URL: inf.ns.URL(), DuplicateWindow: 2 * time.Minute, Retention: time.Hour, MaxDeliver: 5,
			AckWait: 30 * time.Second, BackoffBase: time.Second, BackoffMax: time.Minute, DrainTimeout: 10 * time.Second}, bus.Options{Log: inf.Log})
	}
	if err != nil {
		inf.Close()
		return nil, err
	}
	return inf, nil
}

// Close stops what Start started and removes its directory.
func (inf *Infra) Close() {
	if inf.Bus != nil {
		_ = inf.Bus.Drain()
	}
	if inf.ns != nil {
		inf.ns.Shutdown()
	}
	if inf.DB != nil {
		inf.DB.Close()
	}
	if inf.pg != nil {
		_ = inf.pg.Stop()
	}
	_ = os.RemoveAll(inf.Dir)
}

// ResetPeakRSS resets VmHWM (Linux: writing 5 to clear_refs), so a peak
// read later covers what ran since, not the setup.
func ResetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// RSSKB reads a kB field of /proc/self/status ("VmRSS", "VmHWM"); 0 when
// unavailable.
func RSSKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
