// Package gateway is the only door into the user's data: the HTTP API under
// /api/v1 (documented in docs/api.md), its authentication (one household admin:
// session cookies with CSRF tokens, API tokens), live updates over Server-Sent
// Events and the browser UI embedded in the binary. It reads state from the
// store and hands work to the other services over the bus.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/microcosm-cc/bluemonday"
	"github.com/nats-io/nats.go"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/search"
	"github.com/ownyou/home/pkg/store"
)

// Config is the gateway's configuration.
type Config struct {
	app.Common
	HTTPAddr       string        `env:"OWNYOU_HTTP_ADDR" envDefault:"127.0.0.1:8080" help:"where the API and UI listen"`
	MaxUploadBytes int64         `env:"OWNYOU_MAX_UPLOAD_BYTES" envDefault:"8589934592" help:"largest file accepted by POST /api/v1/imports"`
	AdminPassword  string        `env:"OWNYOU_ADMIN_PASSWORD" secret:"true" help:"optional, for unattended installs: the admin password to create at first start (an existing one is kept)"`
	AdminToken     string        `env:"OWNYOU_ADMIN_TOKEN" secret:"true" help:"when set, Authorization: Bearer <token> is accepted as the admin (scripts, tests)"`
	SessionTTL     time.Duration `env:"OWNYOU_SESSION_TTL" envDefault:"720h" help:"how long a browser session stays signed in"`
	LoginPerMinute int           `env:"OWNYOU_LOGIN_PER_MINUTE" envDefault:"10" help:"sign-in attempts allowed per client address per minute"`
	EventsInterval time.Duration `env:"OWNYOU_EVENTS_INTERVAL" envDefault:"2s" help:"how often GET /api/v1/events checks pipeline progress"`
	Sources        SourcesConfig
	Models         ModelsConfig
	StallAfter     time.Duration `env:"OWNYOU_STALL_AFTER" envDefault:"2m" help:"a worker, stage or syncing source silent this long is flagged as stalled"`
	SearchTerms    time.Duration `env:"OWNYOU_SEARCH_TERMS_EVERY" envDefault:"1m" help:"how often to check whether keyword search's common-term lists need recomputing after new mail (0 = never; docs/search.md)"`
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
	search *search.Searcher
	// limiter rate-limits sign-in attempts; safe for concurrent use.
	limiter *loginLimiter
	// policy sanitizes email HTML; a bluemonday policy is safe for concurrent use once built.
	policy *bluemonday.Policy
	// feed caches the ranked feed (feed.go); feedSub drops it on every
	// missions.* message.
	feed    *feedCache
	feedSub *nats.Subscription
	// stopping is closed when Run begins shutting down, so long-lived
	// responses (event streams) end and Shutdown does not wait for them.
	stopping chan struct{}
	// models checks and downloads the model cache; its downloads end
	// with stopBackground.
	models         *modelManager
	stopBackground context.CancelFunc
}

// New builds the gateway, creates the admin from OWNYOU_ADMIN_PASSWORD when
// none exists yet, and binds its listener, so Addr is known at once.
func New(cfg Config, d app.Deps) (*Server, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 720 * time.Hour
	}
	if cfg.LoginPerMinute <= 0 {
		cfg.LoginPerMinute = 10
	}
	if cfg.EventsInterval <= 0 {
		cfg.EventsInterval = 2 * time.Second
	}
	s := &Server{cfg: cfg, db: d.DB, bus: d.Bus, log: d.Log.With("service", "gateway"), health: d.Health,
		limiter: newLoginLimiter(cfg.LoginPerMinute, cfg.LoginPerMinute), policy: mailPolicy(), stopping: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.ensureAdminFromEnv(ctx); err != nil {
		return nil, fmt.Errorf("gateway admin: %w", err)
	}
	s.search = search.New(d.DB.Pool, embedclient.New(d.Bus.Conn(), 10*time.Second), search.Config{})
	bg, stopBg := context.WithCancel(context.Background())
	s.models, s.stopBackground = newModelManager(bg, cfg.Models, cfg.DataDir, s.log), stopBg
	s.feed = newFeedCache()
	sub, err := d.Bus.Conn().Subscribe("missions.>", func(*nats.Msg) { s.feed.invalidate() })
	if err != nil {
		return nil, fmt.Errorf("gateway: subscribe missions: %w", err)
	}
	s.feedSub = sub
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("gateway listen %s: %w", cfg.HTTPAddr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.requireAuth(s.routes()), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
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
	termsCtx, stopTerms := context.WithCancel(ctx)
	termsDone := make(chan struct{})
	go func() {
		defer close(termsDone)
		s.refreshTermLists(termsCtx)
	}()
	defer func() { stopTerms(); <-termsDone }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	close(s.stopping)
	s.stopBackground()
	defer func() { _ = s.feedSub.Unsubscribe() }()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway shutdown: %w", err)
	}
	return nil
}

// refreshTermLists keeps keyword search's common-term lists current: every
// cfg.SearchTerms it recomputes them if enough mail arrived (pkg/search).
func (s *Server) refreshTermLists(ctx context.Context) {
	if s.cfg.SearchTerms <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.SearchTerms)
	defer t.Stop()
	// After a failure, skip twice as many ticks each time (up to a day), so
	// a refresh that keeps failing does not load Postgres every minute.
	skip, backoff := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if skip > 0 {
			skip--
			continue
		}
		done, st, err := s.search.RefreshTermListsIfStale(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			backoff = min(max(1, 2*backoff), int(24*time.Hour/s.cfg.SearchTerms))
			skip = backoff
			s.log.WarnContext(ctx, "search term lists: refresh failed; searches keep the previous lists",
				"err", err, "retry_in", time.Duration(backoff+1)*s.cfg.SearchTerms)
		case done:
			backoff = 0
			s.log.InfoContext(ctx, "search term lists refreshed", "mails", st.Mails, "terms", st.Terms, "took", st.Took.Round(time.Millisecond))
		default:
			backoff = 0
		}
	}
}
