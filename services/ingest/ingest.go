// Package ingest is the ingest service: it keeps Gmail, Outlook and IMAP
// sources in sync on a schedule (with heartbeats, stale-run detection and retries),
// imports uploaded mbox/.eml/zip files from the imports bucket, and turns
// every new email into a stored row and one emails.ingested event
// (Msg-Id emails.ingested:<email id>), so importing a mail twice is a no-op.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/secretbox"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest/gmailsync"
	"github.com/ownyou/home/services/ingest/intake"
	"github.com/ownyou/home/services/ingest/mailparse"
)

// Config is the ingest service's configuration.
type Config struct {
	app.Common
	Concurrency     int           `env:"OWNYOU_INGEST_CONCURRENCY" envDefault:"2" help:"file imports handled at once by this process"`
	SyncInterval    time.Duration `env:"OWNYOU_INGEST_SYNC_INTERVAL" envDefault:"15m" help:"time between scheduled syncs of a source"`
	RetryAfter      time.Duration `env:"OWNYOU_INGEST_RETRY_AFTER" envDefault:"5m" help:"delay before retrying a failed sync"`
	StaleAfter      time.Duration `env:"OWNYOU_INGEST_STALE_AFTER" envDefault:"5m" help:"a sync run or file import without heartbeat for this long is failed and retried"`
	ImportAttempts  int           `env:"OWNYOU_INGEST_IMPORT_ATTEMPTS" envDefault:"3" help:"runs of a file import that stalled (its process died) before it is left failed"`
	HeartbeatEvery  time.Duration `env:"OWNYOU_INGEST_HEARTBEAT" envDefault:"20s" help:"how often a running sync or file import proves it is alive"`
	PollEvery       time.Duration `env:"OWNYOU_INGEST_POLL" envDefault:"2s" help:"how often the scheduler looks for due sources"`
	MaxSyncs        int           `env:"OWNYOU_INGEST_MAX_SYNCS" envDefault:"2" help:"sources synced at once by this process"`
	Workers         int           `env:"OWNYOU_INGEST_WORKERS" envDefault:"8" help:"parallel parse/store/publish workers per file import"`
	MaxMessageBytes int64         `env:"OWNYOU_INGEST_MAX_MESSAGE_BYTES" envDefault:"26214400" help:"larger messages are recorded as errors, not stored"`

	SecretKey          string        `env:"OWNYOU_SECRET_KEY" secret:"true" help:"base64 or hex 32-byte key for credentials at rest; default: a generated key file in the data dir"`
	GoogleClientID     string        `env:"OWNYOU_GOOGLE_CLIENT_ID" help:"OAuth client id for Gmail; optional: empty = Gmail sources cannot sync"`
	GoogleClientSecret string        `env:"OWNYOU_GOOGLE_CLIENT_SECRET" secret:"true" help:"OAuth client secret for Gmail; optional, goes with OWNYOU_GOOGLE_CLIENT_ID"`
	GoogleTokenURL     string        `env:"OWNYOU_GOOGLE_TOKEN_URL" help:"override of Google's OAuth token endpoint (tests)"`
	GmailEndpoint      string        `env:"OWNYOU_GMAIL_ENDPOINT" help:"override of the Gmail API root (tests)"`
	GmailQuotaPerMin   int           `env:"OWNYOU_GMAIL_QUOTA_PER_MINUTE" envDefault:"12000" help:"Gmail quota units per minute this process may use (Google allows 15000)"`
	GmailMaxAttempts   int           `env:"OWNYOU_GMAIL_MAX_ATTEMPTS" envDefault:"8" help:"tries per Gmail call before a message is recorded as failed"`
	GmailBackoffMax    time.Duration `env:"OWNYOU_GMAIL_BACKOFF_MAX" envDefault:"64s" help:"longest wait between Gmail retries"`

	MicrosoftClientID     string        `env:"OWNYOU_MICROSOFT_CLIENT_ID" help:"application (client) id of the Microsoft Entra app registration for Outlook; optional: empty = Outlook sources cannot sync"`
	MicrosoftClientSecret string        `env:"OWNYOU_MICROSOFT_CLIENT_SECRET" secret:"true" help:"client secret of that app registration; optional: a Web platform registration needs one, a public client (loopback redirect) has none"`
	MicrosoftAuthority    string        `env:"OWNYOU_MICROSOFT_AUTHORITY" envDefault:"https://login.microsoftonline.com/common" help:"Microsoft identity platform authority; common = personal and work or school accounts"`
	MicrosoftTokenURL     string        `env:"OWNYOU_MICROSOFT_TOKEN_URL" help:"override of the authority's token endpoint (tests)"`
	GraphEndpoint         string        `env:"OWNYOU_GRAPH_ENDPOINT" help:"override of the Microsoft Graph root, default https://graph.microsoft.com/v1.0 (tests)"`
	GraphConcurrency      int           `env:"OWNYOU_GRAPH_CONCURRENCY" envDefault:"4" help:"Graph requests in flight per Outlook mailbox (Exchange allows 4)"`
	GraphRate             float64       `env:"OWNYOU_GRAPH_REQUESTS_PER_SECOND" envDefault:"15" help:"Graph requests per second per Outlook mailbox (Exchange allows 10,000 per 10 minutes)"`
	GraphMaxAttempts      int           `env:"OWNYOU_GRAPH_MAX_ATTEMPTS" envDefault:"8" help:"tries per Graph request before a message is recorded as failed"`
	GraphBackoffMax       time.Duration `env:"OWNYOU_GRAPH_BACKOFF_MAX" envDefault:"64s" help:"longest wait between Graph retries (a longer Retry-After is capped to it)"`
}

// Service runs syncs and imports. It is safe for concurrent use.
type Service struct {
	cfg   Config
	db    *store.DB
	bus   *bus.Bus
	log   *slog.Logger
	box   *secretbox.Box
	proc  *intake.Processor
	http  *http.Client
	data  string
	gmail gmailsync.Config

	mu      sync.Mutex
	running map[string]context.CancelFunc
	wg      sync.WaitGroup
}

// New builds the service from the shared dependencies.
func New(cfg Config, d app.Deps) (*Service, error) {
	dataDir := d.Common.DataDir
	if dataDir == "" {
		dataDir = cfg.DataDir
	}
	box, err := secretbox.Load(cfg.SecretKey, dataDir)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if cfg.MaxSyncs <= 0 {
		cfg.MaxSyncs = 1
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 2 * time.Second
	}
	if cfg.HeartbeatEvery <= 0 {
		cfg.HeartbeatEvery = 20 * time.Second
	}
	s := &Service{
		cfg: cfg, db: d.DB, bus: d.Bus, log: d.Log.With("service", "ingest"), box: box,
		http: &http.Client{Timeout: 2 * time.Minute}, data: dataDir,
		gmail: gmailsync.Config{QuotaPerMinute: cfg.GmailQuotaPerMin, MaxAttempts: cfg.GmailMaxAttempts,
			BackoffMax: cfg.GmailBackoffMax, BackoffInitial: min(time.Second, cfg.GmailBackoffMax)},
		running: map[string]context.CancelFunc{},
	}
	s.proc = intake.New(&emailStore{db: d.DB}, &publisher{bus: d.Bus}, mailparse.Options{MaxSize: cfg.MaxMessageBytes})
	return s, nil
}

// Builder is the app.Builder of the ingest service.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "ingest", Build: func(_ context.Context, d app.Deps) (app.Service, error) { return New(cfg, d) }}
}

// Run consumes import requests and schedules syncs until ctx ends, then
// waits for running syncs to stop (they resume from their cursor later).
func (s *Service) Run(ctx context.Context) error {
	cons, err := bus.Consume(ctx, s.bus, bus.ImportsRequested, bus.ConsumeOptions{Durable: bus.ConsumerIngestImports, Concurrency: max(1, s.cfg.Concurrency)}, s.handleImport)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	defer cons.Stop()
	t := time.NewTicker(s.cfg.PollEvery)
	defer t.Stop()
	for {
		s.schedule(ctx)
		select {
		case <-ctx.Done():
			s.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// schedule fails stale runs and imports (retrying what may be retried),
// then claims due sources up to MaxSyncs.
func (s *Service) schedule(ctx context.Context) {
	s.sweepImports(ctx)
	if ids, err := s.db.FailStaleRuns(ctx, s.cfg.StaleAfter, 0); err != nil {
		if ctx.Err() == nil {
			s.log.ErrorContext(ctx, "stale run check failed", "err", err)
		}
	} else if len(ids) > 0 {
		s.log.WarnContext(ctx, "sync runs stalled; marked failed for retry", "sources", ids)
	}
	for {
		s.mu.Lock()
		free := len(s.running) < s.cfg.MaxSyncs
		s.mu.Unlock()
		if !free || ctx.Err() != nil {
			return
		}
		claim, err := s.db.ClaimDueSource(ctx, newRunID(), []string{store.SourceGmail, store.SourceIMAP, store.SourceOutlook})
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "claim source failed", "err", err)
			}
			return
		}
		runCtx, cancel := context.WithCancel(ctx)
		s.mu.Lock()
		s.running[claim.Source.ID] = cancel
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				cancel()
				s.mu.Lock()
				delete(s.running, claim.Source.ID)
				s.mu.Unlock()
			}()
			s.runSource(runCtx, claim)
		}()
	}
}

// Syncing reports how many sources this process is syncing now.
func (s *Service) Syncing() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

func (s *Service) googleOAuth() googleoauth.Config {
	return googleoauth.Config{ClientID: s.cfg.GoogleClientID, ClientSecret: s.cfg.GoogleClientSecret, TokenURL: s.cfg.GoogleTokenURL}
}

func (s *Service) tempDir() string {
	if s.data == "" {
		return ""
	}
	return filepath.Join(s.data, "tmp")
}
