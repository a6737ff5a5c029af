// Package gateway is the only door into the user's data: the HTTP API under
// /api/v1 (and, through later work, auth, live updates and the browser UI). It
// reads state from the store and hands work to the other services over the bus.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// Config is the gateway's configuration.
type Config struct {
	app.Common
	HTTPAddr       string `env:"OWNYOU_HTTP_ADDR" envDefault:"127.0.0.1:8080" help:"where the API and UI listen"`
	MaxUploadBytes int64  `env:"OWNYOU_MAX_UPLOAD_BYTES" envDefault:"8589934592" help:"largest file accepted by POST /api/v1/imports"`
}

// Server is the gateway service.
type Server struct {
	cfg    Config
	db     *store.DB
	bus    *bus.Bus
	log    *slog.Logger
	health *app.Health
	srv    *http.Server
	ln     net.Listener
}

// New builds the gateway and binds its listener, so Addr is known at once.
func New(cfg Config, d app.Deps) (*Server, error) {
	s := &Server{cfg: cfg, db: d.DB, bus: d.Bus, log: d.Log.With("service", "gateway"), health: d.Health}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("gateway listen %s: %w", cfg.HTTPAddr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return s, nil
}

// Builder is the app.Builder of the gateway.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "gateway", Build: func(_ context.Context, d app.Deps) (app.Service, error) { return New(cfg, d) }}
}

// Addr is the address the gateway listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler returns the gateway's HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Run serves HTTP until ctx is cancelled, then lets in-flight requests finish.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("gateway listening", "url", "http://"+s.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway shutdown: %w", err)
	}
	return nil
}
