// Package agents is the agents service: the trigger engine and the mission
// agents. It consumes emails.classified (data triggers, debounced), runs
// cron schedules and approaching-event scans, answers user requests from
// missions.requested, runs the agents through the scheduler, stores their
// cards and run records in Postgres and publishes missions.created /
// missions.updated.
package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/pkg/search"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/agents/agent"
	"github.com/ownyou/home/services/agents/sched"
	"github.com/ownyou/home/services/agents/trigger"
)

// Config is the agents service's configuration.
type Config struct {
	app.Common
	Concurrency int           `env:"OWNYOU_AGENTS_CONCURRENCY" envDefault:"4" help:"messages handled at once by this process"`
	PerAgent    int           `env:"OWNYOU_AGENTS_PER_AGENT" envDefault:"1" help:"runs of one agent at once (on different subjects)"`
	Schedules   string        `env:"OWNYOU_AGENTS_SCHEDULES" envDefault:"daily_digest=0 7 * * *;weekly_review=0 18 * * 0;weekly_diagnostic=0 6 * * 1" help:"cron schedules name=spec;… (daily_digest, weekly_review, weekly_diagnostic); an empty spec disables one"`
	Debounce    time.Duration `env:"OWNYOU_AGENTS_DEBOUNCE" envDefault:"30s" help:"quiet time that ends a burst of new mail before agents look at it"`
	DebounceMax time.Duration `env:"OWNYOU_AGENTS_DEBOUNCE_MAX" envDefault:"5m" help:"longest a burst of new mail waits for the agents"`
	EventWindow time.Duration `env:"OWNYOU_AGENTS_EVENT_WINDOW" envDefault:"48h" help:"how close a booked date must be to refresh its card"`
	EventScan   time.Duration `env:"OWNYOU_AGENTS_EVENT_SCAN" envDefault:"1h" help:"how often to look for approaching booked dates"`
	EmbedWait   time.Duration `env:"OWNYOU_AGENTS_EMBED_TIMEOUT" envDefault:"5s" help:"how long an evidence search waits for the embedder's query vector before it searches by keywords only"`
	LLMURL      string        `env:"OWNYOU_LLM_BASE_URL" help:"OpenAI-compatible base URL (shared with the classifier) that also rewrites card titles and summaries; empty = no LLM"`
	LLMModel    string        `env:"OWNYOU_LLM_MODEL" help:"model name at that endpoint; optional: only used when OWNYOU_LLM_BASE_URL is set"`
	LLMKey      string        `env:"OWNYOU_LLM_API_KEY" secret:"true" help:"API key for OWNYOU_LLM_BASE_URL; optional: local servers need none"`
	TaxonomyDir string        `env:"OWNYOU_TAXONOMY_DIR" help:"directory holding the IAB TSVs, for category names (default: <data dir>/models/iab-taxonomies, else $OWNYOU_SHARED_DIR/data/iab)"`
}

// Base returns the common block.
func (c *Config) Base() app.Common { return c.Common }

// Service is the agents stage.
type Service struct {
	cfg    Config
	db     *store.DB
	bus    *bus.Bus
	log    *slog.Logger
	data   *pgData
	sched  *sched.Scheduler
	scheds []trigger.Schedule
	deb    *trigger.Debouncer

	wg       sync.WaitGroup
	mu       sync.Mutex
	retries  map[string]*retry // data jobs waiting out a cool-down, by agent
	batching bool              // a batch of pending new-mail triggers is running
	again    bool              // more new mail arrived during the batch
	runCtx   context.Context   // cancelled when the service stops
	jobCtx   context.Context   // cancelled a grace period after the service stops
	stopJob  context.CancelFunc
}

// shutdownGrace is how long runs in flight at shutdown may continue.
const shutdownGrace = 10 * time.Second

// New builds the agents service.
func New(cfg Config, d app.Deps) (*Service, error) {
	scheds, err := trigger.ParseSchedules(cfg.Schedules)
	if err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	log := d.Log.With("stage", bus.ConsumerAgents)
	nm, err := taxonomy.Load(taxonomy.Dir(cfg.TaxonomyDir, cfg.DataDir))
	if err != nil {
		log.Warn("category names unavailable; agents see category ids", "err", err)
	}
	s := &Service{cfg: cfg, db: d.DB, bus: d.Bus, log: log, scheds: scheds, retries: map[string]*retry{}, runCtx: context.Background()}
	s.jobCtx, s.stopJob = context.WithCancel(context.Background())
	// evidence search: keywords plus the embedder's query vector over NATS
	// (embed.request); without an embedder it degrades to keywords and says so
	s.data = &pgData{db: d.DB, names: nm, search: search.New(d.DB.Pool, embedclient.New(d.Bus.Conn(), cfg.EmbedWait), search.Config{})}
	var writer agent.Writer
	if cfg.LLMURL != "" {
		writer = agent.NewOpenAIWriter(cfg.LLMURL, cfg.LLMKey, cfg.LLMModel)
	}
	s.sched = sched.New(sched.Config{Concurrency: cfg.PerAgent}, agent.All(agent.Providers{}), s.data, writer, runStore{d.DB}, s, log)
	// the debouncer only says when a burst of new mail is over: the triggers
	// themselves are the pending rows in Postgres
	s.deb = trigger.NewDebouncer(cfg.Debounce, cfg.DebounceMax, func(trigger.Trigger) { s.firePending() })
	return s, nil
}

// Builder is the app.Builder of the agents service.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "agents", Build: func(_ context.Context, d app.Deps) (app.Service, error) { return New(cfg, d) }}
}

// Run consumes emails.classified and missions.requested, runs schedules and
// event scans until ctx is cancelled, then drains: runs in flight get a
// short grace period before they are cancelled (and recorded as failed).
// New-mail triggers not yet acted on stay pending in Postgres; at start,
// pending triggers left by an earlier process (a crash, a shutdown in the
// middle of a batch) are run at once.
func (s *Service) Run(ctx context.Context) error {
	s.runCtx = ctx
	defer s.stopJob()
	// Look for rows an earlier process left before consuming: a start-up
	// batch fired regardless would also take mail arriving in its first
	// moments, skipping the quiet period.
	left, err := loadPending(ctx, s.db, 1)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	c, err := bus.Consume(ctx, s.bus, bus.EmailsClassified, bus.ConsumeOptions{Durable: bus.ConsumerAgents, Concurrency: s.cfg.Concurrency}, s.handle)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	rc, err := bus.Consume(ctx, s.bus, bus.MissionsRequested, bus.ConsumeOptions{Durable: bus.ConsumerAgentRequests, Concurrency: 2}, s.handleRequest)
	if err != nil {
		c.Stop()
		return fmt.Errorf("agents: %w", err)
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = trigger.RunSchedules(ctx, s.scheds, s.fire)
	}()
	go func() {
		defer s.wg.Done()
		s.scanEvents(ctx)
	}()
	if len(left) > 0 {
		s.firePending()
	}
	<-ctx.Done()
	c.Stop()
	rc.Stop()
	s.deb.Discard()
	grace := time.AfterFunc(shutdownGrace, s.stopJob)
	defer grace.Stop()
	s.wg.Wait()
	return nil
}

// handle records a classified mail as a pending data trigger in Postgres
// (idempotent by email id), marks the stage done and acks; the debounced
// batch runs the agents on the pending triggers and clears them only once
// its runs are recorded, so an ack never loses the work it promises.
func (s *Service) handle(ctx context.Context, m bus.EmailClassified) error {
	var cats []string
	for _, c := range m.Categories {
		cats = append(cats, s.data.names.Name(c.Taxonomy, c.ID))
	}
	if err := addPending(ctx, s.db, m.EmailID, cats, time.Now()); err != nil {
		return err
	}
	if err := s.db.MarkStageDone(ctx, m.EmailID, bus.ConsumerAgents); err != nil {
		return err
	}
	s.deb.Add(trigger.Trigger{Kind: trigger.DataClassified, At: time.Now()})
	return nil
}

// firePending starts a batch over the pending new-mail triggers, or, when
// one is running, has it look again once it is done: batches run one at a
// time, so each pending row is acted on by one batch.
func (s *Service) firePending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx.Err() != nil {
		return
	}
	if s.batching {
		s.again = true
		return
	}
	s.batching = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			more := s.runPending()
			s.mu.Lock()
			if (!more && !s.again) || s.runCtx.Err() != nil {
				s.batching = false
				s.mu.Unlock()
				return
			}
			s.again = false
			s.mu.Unlock()
		}
	}()
}

// runPending runs the data agents on one batch of pending triggers: the
// new mail's trigger (agents chosen by its categories) and, when the mail
// had categories, the profile-change trigger, one job per agent since
// both look at the whole mailbox. The batch's rows are cleared once every
// job's run is recorded, even a failed one (its record says why); a batch
// cut short by shutdown leaves its rows for the next start. It reports
// whether more rows may be waiting.
func (s *Service) runPending() (more bool) {
	ctx := s.runCtx
	rows, err := loadPending(ctx, s.db, pendingBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("pending triggers unreadable; retrying after the next quiet period", "err", err)
			s.wakeLater()
		}
		return false
	}
	if len(rows) == 0 {
		return false
	}
	now := time.Now()
	t := trigger.Trigger{Kind: trigger.DataClassified, At: now}
	seenCat := map[string]bool{}
	var newest time.Time
	for _, r := range rows {
		t.EmailIDs = append(t.EmailIDs, r.EmailID)
		if r.SeenAt.After(newest) {
			newest = r.SeenAt
		}
		for _, c := range r.Categories {
			if !seenCat[c] {
				seenCat[c] = true
				t.Categories = append(t.Categories, c)
			}
		}
	}
	jobs, err := trigger.Plan(t)
	if err != nil {
		s.log.Error("plan trigger", "kind", t.Kind, "err", err)
		return false
	}
	if len(t.Categories) > 0 {
		pj, err := trigger.Plan(trigger.Trigger{Kind: trigger.DataProfile, At: now})
		if err != nil {
			s.log.Error("plan trigger", "kind", trigger.DataProfile, "err", err)
			return false
		}
		planned := map[string]bool{}
		for _, j := range jobs {
			planned[j.Agent] = true
		}
		for _, j := range pj {
			if !planned[j.Agent] {
				jobs = append(jobs, j)
			}
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := true
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !s.runData(j, newest) {
				mu.Lock()
				done = false
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if !done {
		if ctx.Err() == nil {
			s.wakeLater() // a run could not even be recorded: try the rows again
		}
		return false
	}
	// the runs are recorded: clear the rows even if shutdown began meanwhile
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := donePending(dctx, s.db, rows); err != nil {
		s.log.Error("pending triggers not cleared; they will run again", "err", err)
		return false
	}
	return len(rows) == pendingBatch
}

// wakeLater has the pending triggers looked at again after a quiet period.
func (s *Service) wakeLater() {
	time.AfterFunc(max(s.cfg.Debounce, time.Second), func() { s.deb.Add(trigger.Trigger{Kind: trigger.DataClassified}) })
}

// retry is a data job waiting out its cool-down; batches that need the same
// agent meanwhile wait for it instead of queueing runs of their own.
type retry struct {
	done chan struct{}
	ok   bool
}

// runData runs a data job for mail seen up to newest and reports whether
// its run is recorded: true when it ran (ok or failed on its own) or a
// successful run that started after newest already covered the mail,
// false when shutdown stopped it or no run could be recorded. A job that is
// cooling down or already running otherwise waits for a run that starts
// once the cool-down is over.
func (s *Service) runData(j trigger.Job, newest time.Time) bool {
	run, err := s.sched.Run(s.jobCtx, j)
	switch {
	case err == nil:
		return true
	case errors.Is(err, sched.ErrCoolingDown):
		covered, cerr := okRunStartedAfter(s.runCtx, s.db, j.Agent, j.Subject, newest)
		if cerr != nil && s.runCtx.Err() == nil {
			s.log.Warn("check earlier runs", "agent", j.Agent, "err", cerr)
		}
		if covered {
			return true
		}
		return s.retryLater(j, newest)
	case errors.Is(err, sched.ErrRunning):
		return s.retryLater(j, newest)
	case s.runCtx.Err() != nil:
		return false
	case run.ID == "":
		s.log.Error("agent run not started; its new mail stays pending", "agent", j.Agent, "trigger", j.Trigger, "err", err)
		return false
	default:
		s.log.Warn("agent run failed", "agent", j.Agent, "trigger", j.Trigger, "err", err)
		return true
	}
}

// retryLater waits for the agent's data job to run again after its
// cool-down, joining a wait already under way, and reports how it ended.
func (s *Service) retryLater(j trigger.Job, newest time.Time) bool {
	key := j.Agent + "/" + string(j.Trigger)
	s.mu.Lock()
	r := s.retries[key]
	if r == nil {
		r = &retry{done: make(chan struct{})}
		s.retries[key] = r
		go func() {
			defer close(r.done)
			wait := j.CoolDown
			if last, err := (runStore{s.db}).LastOK(s.runCtx, j.Agent, j.Subject); err == nil && !last.IsZero() {
				wait = time.Until(last.Add(j.CoolDown))
			}
			t := time.NewTimer(max(wait, time.Second))
			defer t.Stop()
			select {
			case <-s.runCtx.Done():
			case <-t.C:
			}
			s.mu.Lock()
			delete(s.retries, key) // batches from now on need a run that starts after their mail
			s.mu.Unlock()
			if s.runCtx.Err() != nil {
				return
			}
			j.Input.Now = time.Now()
			r.ok = s.runData(j, newest)
		}()
	}
	s.mu.Unlock()
	<-r.done
	return r.ok
}

// fire plans a trigger and runs its jobs in the background.
func (s *Service) fire(t trigger.Trigger) {
	if t.At.IsZero() {
		t.At = time.Now()
	}
	jobs, err := trigger.Plan(t)
	if err != nil {
		s.log.Error("plan trigger", "kind", t.Kind, "err", err)
		return
	}
	for _, j := range jobs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.runJob(j)
		}()
	}
}

func (s *Service) runJob(j trigger.Job) {
	_, err := s.sched.Run(s.jobCtx, j)
	switch {
	case err == nil, errors.Is(err, sched.ErrRunning), errors.Is(err, sched.ErrCoolingDown):
	default:
		s.log.Warn("agent run failed", "agent", j.Agent, "trigger", j.Trigger, "err", err)
	}
}

// scanEvents fires event triggers for cards whose date is approaching.
func (s *Service) scanEvents(ctx context.Context) {
	if s.cfg.EventScan <= 0 {
		return
	}
	tick := time.NewTicker(s.cfg.EventScan)
	defer tick.Stop()
	for {
		cards, err := s.db.Missions(ctx, store.MissionFilter{EventBefore: time.Now().Add(s.cfg.EventWindow)})
		if err != nil && ctx.Err() == nil {
			s.log.Warn("event scan", "err", err)
		}
		for _, t := range trigger.Approaching(cards, time.Now(), s.cfg.EventWindow) {
			s.fire(t)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// handleRequest routes a user's request to an agent, runs it and records
// the outcome on the request. A request no agent understands is answered
// (status no_intent), not retried.
func (s *Service) handleRequest(ctx context.Context, m bus.MissionRequest) error {
	req, err := s.db.AgentRequestByID(ctx, m.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(fmt.Errorf("request %s: %w", m.RequestID, err))
	}
	if err != nil {
		return err
	}
	if req.Status == "done" || req.Status == "no_intent" {
		return nil // already answered: a redelivery
	}
	now := time.Now()
	name, ents, err := trigger.Route(req.Text, now)
	entsJSON, _ := json.Marshal(ents)
	req.Entities = entsJSON
	if errors.Is(err, trigger.ErrNoIntent) {
		req.Status, req.Error = "no_intent", err.Error()
		return s.db.UpdateAgentRequest(ctx, req)
	}
	req.Agent, req.Status = name, "running"
	if err := s.db.UpdateAgentRequest(ctx, req); err != nil {
		return err
	}
	jobs, err := trigger.Plan(trigger.Trigger{Kind: trigger.UserRequest, At: now, Agent: name,
		Request: &agent.Request{ID: req.ID, Text: req.Text, Entities: ents}})
	if err != nil {
		return bus.Permanent(err)
	}
	run, err := s.sched.Run(ctx, jobs[0])
	req.RunID = run.ID
	switch {
	case err == nil:
		req.Status, req.Error = "done", ""
	case errors.Is(err, sched.ErrRunning):
		return err // the same request is being answered by another delivery; retry later
	default:
		req.Status, req.Error = "failed", err.Error()
	}
	return s.db.UpdateAgentRequest(ctx, req)
}

// SaveCards implements sched.CardSink: upsert each card and publish
// missions.created / missions.updated for every change not yet published.
func (s *Service) SaveCards(ctx context.Context, cards []mission.Card) ([]string, error) {
	var ids []string
	var errs []error
	profile, err := s.data.Profile(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cards {
		if c.Category != "" {
			// one decimal, so small profile drifts do not rewrite every card
			c.Confidence = math.Round(profile.Confidence(c.Category)*10) / 10
		}
		ch, err := s.db.UpsertMission(ctx, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, c.ID)
		if ch.Unpublished {
			if err := s.publish(ctx, ch); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return ids, errors.Join(errs...)
}

func (s *Service) publish(ctx context.Context, ch store.MissionChange) error {
	c := ch.Card
	ev := bus.MissionEvent{MissionID: c.ID, Agent: c.Agent, Status: string(c.Status)}
	var err error
	if ch.Created {
		err = bus.Publish(ctx, s.bus, bus.MissionsCreated, c.ID, ev)
	} else {
		err = bus.Publish(ctx, s.bus, bus.MissionsUpdated, fmt.Sprintf("%s:%d", c.ID, c.UpdatedAt.UnixNano()), ev)
	}
	if err != nil {
		return fmt.Errorf("publish mission %s: %w", c.ID, err)
	}
	return s.db.MarkMissionPublished(ctx, c.ID, c.UpdatedAt)
}

// runStore adapts the store to sched.RunStore.
type runStore struct{ db *store.DB }

func (r runStore) SaveRun(ctx context.Context, run sched.Run) error {
	lim, _ := json.Marshal(map[string]any{"tool_calls": run.Limits.ToolCalls, "llm_calls": run.Limits.LLMCalls, "timeout_s": run.Limits.Timeout.Seconds()})
	var end *time.Time
	if !run.End.IsZero() {
		end = &run.End
	}
	return r.db.SaveAgentRun(ctx, store.AgentRun{ID: run.ID, Agent: run.Agent, Trigger: string(run.Trigger), Subject: run.Subject,
		StartedAt: run.Start, EndedAt: end, Outcome: string(run.Outcome), Error: run.Error, ToolCalls: run.Usage.ToolCalls,
		LLMCalls: run.Usage.LLMCalls, Cards: run.Usage.Cards, CardIDs: run.CardIDs, Rejected: run.Rejected, Notes: run.Notes,
		Limits: lim})
}

func (r runStore) LastOK(ctx context.Context, agentName, subject string) (time.Time, error) {
	return r.db.LastOKAgentRun(ctx, agentName, subject)
}
