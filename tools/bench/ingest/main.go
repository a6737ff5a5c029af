// Command ingest measures importing a generated 10,000-message mbox through
// the real ingest service (object bucket → mbox reader → parse → Postgres →
// emails.ingested), with a private Postgres and an embedded JetStream, and
// prints BENCH lines: emails/s and the process's peak RSS during the import.
// BENCH_INGEST_MESSAGES overrides the message count.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ownyou/home/internal/benchkit"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest"
	"github.com/ownyou/home/services/ingest/mailparse"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench ingest:", err)
		os.Exit(1)
	}
}

func run() error {
	// Deferred cleanup (stopping the private Postgres) must run even when
	// the output pipe closes early or the run is interrupted.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	n := 10000
	if v := os.Getenv("BENCH_INGEST_MESSAGES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	inf, err := benchkit.Start(ctx, "ingest", 5499)
	if err != nil {
		return err
	}
	defer inf.Close()
	dir, db, b, log := inf.Dir, inf.DB, inf.Bus, inf.Log

	// Upload the generated mbox into the imports bucket, streamed.
	objs, err := b.ImportObjects(ctx)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(mailparse.WriteSyntheticMbox(pw, n, 42)) }()
	info, err := objs.Put(ctx, jetstreamMeta("bench"), pr)
	if err != nil {
		return err
	}
	if err := db.CreateImport(ctx, "bench", "bench.mbox", store.ImportQueued, int64(info.Size)); err != nil {
		return err
	}

	var cfg ingest.Config
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Concurrency, cfg.Workers, cfg.MaxMessageBytes = 1, 8, 25<<20
	if v := os.Getenv("BENCH_INGEST_WORKERS"); v != "" {
		cfg.Workers, _ = strconv.Atoi(v)
	}
	cfg.SyncInterval, cfg.RetryAfter, cfg.StaleAfter, cfg.HeartbeatEvery, cfg.PollEvery, cfg.MaxSyncs = time.Hour, time.Minute, 5*time.Minute, 20*time.Second, time.Second, 1
	svc, err := ingest.New(cfg, app.Deps{Common: cfg.Common, DB: db, Bus: b, Log: log})
	if err != nil {
		return err
	}
	runtime.GC()
	benchkit.ResetPeakRSS()
	baseRSS := benchkit.RSSKB("VmRSS")

	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	pgDir := inf.PGDir
	cpu0, pgCPU0 := cpuTime(), pgCPUTime(pgDir)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	start := time.Now()
	if err := bus.Publish(ctx, b, bus.ImportsRequested, "bench", bus.ImportRequested{ImportID: "bench", Object: "bench", Filename: "bench.mbox"}); err != nil {
		return err
	}
	var im store.Import
	for {
		im, err = db.GetImport(ctx, "bench")
		if err != nil {
			return err
		}
		if im.Status == store.ImportDone || (im.Status == store.ImportFailed && !strings.Contains(im.Error, "retrying")) {
			break
		}
		if time.Since(start) > 10*time.Minute || ctx.Err() != nil {
			return fmt.Errorf("import did not finish: %+v", im)
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	cpu, pgCPU := cpuTime()-cpu0, pgCPUTime(pgDir)-pgCPU0
	peak := benchkit.RSSKB("VmHWM")
	stop()
	<-done
	if im.Status != store.ImportDone || im.Imported != n {
		return fmt.Errorf("import %+v, want %d imported", im, n)
	}
	fmt.Printf("BENCH ingest_mbox_emails_per_s %.0f emails/s\n", float64(n)/el.Seconds())
	fmt.Printf("BENCH ingest_mbox_mb_per_s %.1f MB/s\n", float64(info.Size)/el.Seconds()/1e6)
	// CPU of this process (ingest + the embedded NATS server; Postgres is a
	// separate process) per email: with the machine shared, this says more
	// than wall time about what 2 cores can do.
	fmt.Printf("BENCH ingest_mbox_cpu_per_email %.3f ms\n", float64(cpu.Microseconds())/1000/float64(n))
	// Postgres's CPU (its server and backend processes) per email: with the
	// in-process figure, what one email costs the 2 cores in all.
	fmt.Printf("BENCH ingest_mbox_pg_cpu_per_email %.3f ms\n", float64(pgCPU.Microseconds())/1000/float64(n))
	fmt.Printf("BENCH ingest_mbox_peak_rss %d MB\n", peak/1024)
	fmt.Printf("BENCH ingest_mbox_rss_growth %d MB\n", max(0, peak-baseRSS)/1024)
	fmt.Printf("BENCH mailparse_emails_per_s %.0f emails/s\n", parseRate(2000))
	return nil
}

// parseRate is the single-core parse rate on the same generated corpus.
func parseRate(n int) float64 {
	var buf bytes.Buffer
	_ = mailparse.WriteSyntheticMbox(&buf, n, 7)
	r := mailparse.NewMboxReader(&buf, mailparse.ReaderOptions{})
	start := time.Now()
	count := 0
	for {
		m, err := r.Next()
		if err != nil {
			break
		}
		if _, err := mailparse.Parse(m.Raw, mailparse.Options{}); err == nil {
			count++
		}
	}
	return float64(count) / time.Since(start).Seconds()
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgCPUTime is the user+system CPU time of the Postgres server whose data
// directory is under dir and of its child processes (backends, writers), read
// from /proc; 0 when unavailable. Sample it while the backends still run.
func pgCPUTime(dir string) time.Duration {
	pidFile, _ := filepath.Glob(filepath.Join(dir, "*", "postmaster.pid"))
	if p := filepath.Join(dir, "postmaster.pid"); len(pidFile) == 0 {
		pidFile = []string{p}
	}
	b, err := os.ReadFile(pidFile[0])
	if err != nil {
		return 0
	}
	master, _, _ := strings.Cut(string(b), "\n")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, e := range entries {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesized command: state ppid … utime(14) stime(15).
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 || (e.Name() != master && f[1] != master) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
