// Package app is the process runtime every service binary shares: it sets up
// logging and tracing, opens the database (applying migrations) and the bus,
// serves /healthz, /readyz and /metrics on the admin address, runs one or more
// services, and shuts down in order: services (HTTP, then consumers drain) →
// NATS drain → pool close → telemetry flush.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/config"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/telemetry"
)

// Common is the configuration block every service embeds.
type Common struct {
	DataDir   string `env:"OWNYOU_DATA_DIR" envDefault:".data" help:"where all state lives (database, streams, models, keys)"`
	AdminAddr string `env:"OWNYOU_ADMIN_ADDR" envDefault:"127.0.0.1:9090" help:"address of /healthz, /readyz and /metrics"`
	Telemetry telemetry.Config
	DB        store.Config
	Bus       bus.Config
}

// Deps are the process-wide resources services are built from. All are safe
// for concurrent use; the runtime owns and closes them.
type Deps struct {
	Common  Common
	DB      *store.DB
	Bus     *bus.Bus
	Log     *slog.Logger
	Metrics *prometheus.Registry
	Health  *Health
}

// Service is a running part of the system. Run blocks until ctx is cancelled,
// then stops its HTTP servers and drains its consumers before returning; it
// returns a non-nil error only for a failure that should stop the process.
type Service interface {
	Run(ctx context.Context) error
}

// Builder constructs one service from the shared dependencies.
type Builder struct {
	Name  string
	Build func(ctx context.Context, d Deps) (Service, error)
}

// Run runs the given services in this process until ctx is cancelled or one of
// them fails, then shuts everything down in order.
func Run(ctx context.Context, name string, c Common, log *slog.Logger, builders ...Builder) (err error) {
	flush, err := telemetry.SetupTracing(ctx, name)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ferr := flush(fctx); ferr != nil {
			log.Warn("telemetry flush", "err", ferr)
		}
	}()

	reg := telemetry.NewRegistry()
	health := NewHealth()
	db, err := store.Open(ctx, c.DB, log)
	if err != nil {
		return err
	}
	defer func() {
		db.Close()
		log.Info("database pool closed")
	}()
	health.Add("postgres", db.Ready)

	b, err := bus.Connect(ctx, c.Bus, bus.Options{Log: log, Metrics: reg, DeadLetter: db, Name: name})
	if err != nil {
		return err
	}
	defer func() {
		if derr := b.Drain(); derr != nil {
			log.Warn("nats drain", "err", derr)
		}
		log.Info("nats drained")
	}()
	health.Add("nats", b.Ready)

	deps := Deps{Common: c, DB: db, Bus: b, Log: log, Metrics: reg, Health: health}
	services := make([]Service, 0, len(builders))
	for _, bl := range builders {
		s, err := bl.Build(ctx, deps)
		if err != nil {
			return fmt.Errorf("build %s: %w", bl.Name, err)
		}
		services = append(services, s)
	}

	admin, err := ServeAdmin(c.AdminAddr, health, reg, log)
	if err != nil {
		return err
	}
	defer admin.Close()

	g, gctx := errgroup.WithContext(ctx)
	for i, s := range services {
		name := builders[i].Name
		g.Go(func() error {
			if err := s.Run(gctx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	log.Info("running", "services", serviceNames(builders), "admin", admin.Addr())
	err = g.Wait()
	log.Info("services stopped")
	return err
}

func serviceNames(bs []Builder) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}

// Health is the set of readiness checks of a process. Safe for concurrent use.
type Health struct {
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// NewHealth returns an empty set of checks.
func NewHealth() *Health { return &Health{checks: map[string]func(context.Context) error{}} }

// Add registers a named readiness check (database, bus, model loaded, …).
func (h *Health) Add(name string, check func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// Check runs every check and returns each one's error text ("" when fine).
func (h *Health) Check(ctx context.Context) (map[string]string, bool) {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	checks := h.checks
	h.mu.Unlock()
	sort.Strings(names)
	out := map[string]string{}
	ok := true
	for _, n := range names {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := checks[n](cctx)
		cancel()
		if err != nil {
			out[n] = err.Error()
			ok = false
		} else {
			out[n] = "ok"
		}
	}
	return out, ok
}

// HealthHandlers adds /healthz (the process answers) and /readyz (every check
// passes) to mux.
func HealthHandlers(mux *http.ServeMux, h *Health) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		res, ok := h.Check(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		status := "ready"
		if !ok {
			status = "not ready"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": res})
	})
}

// AdminServer serves health and metrics on the admin address.
type AdminServer struct {
	srv *http.Server
	ln  net.Listener
}

// ServeAdmin starts the admin server; an empty addr disables it.
func ServeAdmin(addr string, h *Health, reg *prometheus.Registry, log *slog.Logger) (*AdminServer, error) {
	mux := http.NewServeMux()
	HealthHandlers(mux, h)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	a := &AdminServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	if addr == "" {
		return a, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	a.ln = ln
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server", "err", err)
		}
	}()
	return a, nil
}

// Addr is the address the admin server listens on ("" when disabled).
func (a *AdminServer) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Close stops the admin server.
func (a *AdminServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

// Main is the body of every service's run function: it loads cfg (a pointer to
// the service's config struct) from the environment, honours --help, logs the
// effective configuration with secrets masked, builds the services with build
// (called after the config is loaded) and runs them until ctx is cancelled. A
// failure is logged here, once; pass the result to ExitCode.
func Main(ctx context.Context, name string, args []string, cfg any, build func() (Common, []Builder)) error {
	if err := config.Load(cfg, name, args, os.Stdout); err != nil {
		if !errors.Is(err, config.ErrHelp) {
			fmt.Fprintln(os.Stderr, err)
			return configError{err}
		}
		return err
	}
	c, builders := build()
	log, err := telemetry.NewLogger(os.Stderr, c.Telemetry)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return configError{err}
	}
	log = log.With("process", name)
	log.Info("starting", config.LogAttrs(cfg)...)
	if err := Run(ctx, name, c, log, builders...); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped with error", "err", err)
		return err
	}
	log.Info("stopped")
	return nil
}

// configError marks a failure to read the configuration (exit code 2).
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// ExitCode maps Main's result to a process exit code: 0 for success or --help,
// 2 for a configuration error, 1 otherwise.
func ExitCode(err error) int {
	var ce configError
	switch {
	case err == nil, errors.Is(err, config.ErrHelp):
		return 0
	case errors.As(err, &ce):
		return 2
	default:
		return 1
	}
}

// Exit is the body of a binary's main: it runs run with a context cancelled by
// SIGINT or SIGTERM and the command-line arguments, then exits with
// ExitCode of its result.
func Exit(run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	os.Exit(ExitCode(err))
}
