// Package sched runs agent jobs: per-agent concurrency, dedupe (the same
// agent and subject never run twice at once, nor again within the job's
// cool-down after a success), the level's limits (tool calls, LLM calls,
// timeout), card validation and LLM polish within budget, and a run record
// for every run, stored before and after.
package sched

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/agent"
	"github.com/ownyou/home/services/agents/trigger"
)

// Outcome is how a run ended.
type Outcome string

// Run outcomes.
const (
	OutcomeRunning Outcome = "running"
	OutcomeOK      Outcome = "ok"
	OutcomeFailed  Outcome = "failed"
	OutcomeTimeout Outcome = "timeout"
	OutcomeBudget  Outcome = "budget_exceeded"
)

// Run is the record of one agent run.
type Run struct {
	ID       string       `json:"id"`
	Agent    string       `json:"agent"`
	Trigger  trigger.Kind `json:"trigger"`
	Subject  string       `json:"subject"`
	Start    time.Time    `json:"start"`
	End      time.Time    `json:"end,omitzero"`
	Outcome  Outcome      `json:"outcome"`
	Error    string       `json:"error,omitempty"`
	Usage    agent.Usage  `json:"usage"`
	CardIDs  []string     `json:"card_ids,omitempty"`
	Rejected []string     `json:"rejected,omitempty"` // cards dropped by validation, with the reason
	Notes    []string     `json:"notes,omitempty"`    // what the run worked around, e.g. a search without its semantic leg
	Limits   agent.Limits `json:"limits"`
}

// Skip errors: the job was not run.
var (
	ErrRunning      = errors.New("same agent and subject already running")
	ErrCoolingDown  = errors.New("same agent and subject ran recently")
	ErrUnknownAgent = errors.New("unknown agent")
)

// RunStore records runs; SaveRun upserts by run id. It must be safe for
// concurrent use.
type RunStore interface {
	SaveRun(ctx context.Context, r Run) error
	// LastOK returns when the agent last finished a successful run on the
	// subject (zero if never), so cool-downs survive restarts.
	LastOK(ctx context.Context, agent, subject string) (time.Time, error)
}

// CardSink stores a run's cards (merging with existing ones by id) and
// publishes them. It returns the ids stored.
type CardSink interface {
	SaveCards(ctx context.Context, cards []mission.Card) ([]string, error)
}

// Config tunes the scheduler.
type Config struct {
	// Concurrency is how many runs of one agent may run at once (on
	// different subjects). Default 1.
	Concurrency int
	// Limits overrides the level's limits per agent name (tests, tuning).
	Limits map[string]agent.Limits
}

// Scheduler runs jobs. Safe for concurrent use.
type Scheduler struct {
	cfg    Config
	agents map[string]agent.Agent
	data   agent.Data
	writer agent.Writer
	runs   RunStore
	sink   CardSink
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	sem     map[string]chan struct{}
	running map[string]bool
	lastOK  map[string]time.Time
}

// New returns a scheduler over the given agents. writer may be nil.
func New(cfg Config, agents []agent.Agent, data agent.Data, writer agent.Writer, runs RunStore, sink CardSink, log *slog.Logger) *Scheduler {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	s := &Scheduler{cfg: cfg, agents: map[string]agent.Agent{}, data: data, writer: writer, runs: runs, sink: sink, log: log,
		now: time.Now, sem: map[string]chan struct{}{}, running: map[string]bool{}, lastOK: map[string]time.Time{}}
	for _, a := range agents {
		s.agents[a.Name()] = a
		s.sem[a.Name()] = make(chan struct{}, cfg.Concurrency)
	}
	return s
}

// Agent returns the named agent.
func (s *Scheduler) Agent(name string) (agent.Agent, bool) {
	a, ok := s.agents[name]
	return a, ok
}

func (s *Scheduler) limits(a agent.Agent) agent.Limits {
	if l, ok := s.cfg.Limits[a.Name()]; ok {
		return l
	}
	return a.Level().Limits()
}

// claim marks agent+subject running unless it is running or cooling down.
func (s *Scheduler) claim(ctx context.Context, j trigger.Job) error {
	key := j.Agent + "\x00" + j.Subject
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[key] {
		return ErrRunning
	}
	if j.CoolDown > 0 {
		last, ok := s.lastOK[key]
		if !ok && s.runs != nil {
			s.mu.Unlock()
			t, err := s.runs.LastOK(ctx, j.Agent, j.Subject)
			s.mu.Lock()
			if err != nil {
				return fmt.Errorf("read last run: %w", err)
			}
			last = t
			if s.running[key] {
				return ErrRunning
			}
		}
		if !last.IsZero() && s.now().Sub(last) < j.CoolDown {
			return ErrCoolingDown
		}
	}
	s.running[key] = true
	return nil
}

func (s *Scheduler) release(j trigger.Job, ok bool, at time.Time) {
	key := j.Agent + "\x00" + j.Subject
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, key)
	if ok {
		s.lastOK[key] = at
	}
}

// Run runs one job synchronously and returns its record. A job skipped by
// dedupe returns ErrRunning or ErrCoolingDown and leaves no record. A run
// that fails, times out or exceeds its budget returns its record and an
// error; the record is stored either way.
func (s *Scheduler) Run(ctx context.Context, j trigger.Job) (Run, error) {
	a, ok := s.agents[j.Agent]
	if !ok {
		return Run{}, fmt.Errorf("%w: %q", ErrUnknownAgent, j.Agent)
	}
	if err := s.claim(ctx, j); err != nil {
		return Run{}, err
	}
	sem := s.sem[j.Agent]
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		s.release(j, false, time.Time{})
		return Run{}, ctx.Err()
	}
	defer func() { <-sem }()

	lim := s.limits(a)
	r := Run{ID: newID(), Agent: j.Agent, Trigger: j.Trigger, Subject: j.Subject, Start: s.now(), Outcome: OutcomeRunning, Limits: lim}
	if j.Input.Now.IsZero() {
		j.Input.Now = r.Start
	}
	s.save(ctx, r)
	err := s.execute(ctx, a, j, lim, &r)
	r.End = s.now()
	s.release(j, r.Outcome == OutcomeOK, r.End)
	s.save(ctx, r)
	s.log.InfoContext(ctx, "agent run", "agent", r.Agent, "trigger", r.Trigger, "subject", r.Subject, "outcome", r.Outcome,
		"cards", len(r.CardIDs), "tool_calls", r.Usage.ToolCalls, "llm_calls", r.Usage.LLMCalls, "ms", r.End.Sub(r.Start).Milliseconds(), "error", r.Error, "notes", r.Notes)
	return r, err
}

func (s *Scheduler) save(ctx context.Context, r Run) {
	if s.runs == nil {
		return
	}
	// a run record must be written even when the job's context is cancelled
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.runs.SaveRun(sctx, r); err != nil {
		s.log.ErrorContext(ctx, "save run record", "run", r.ID, "agent", r.Agent, "error", err)
	}
}

type result struct {
	cards []mission.Card
	err   error
}

func (s *Scheduler) execute(ctx context.Context, a agent.Agent, j trigger.Job, lim agent.Limits, r *Run) error {
	rctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	env := agent.NewEnv(s.data, s.writer, lim)
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("agent panicked: %v\n%s", p, debug.Stack())}
			}
		}()
		cards, err := a.Run(rctx, env, j.Input)
		done <- result{cards, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-rctx.Done():
		res.err = rctx.Err()
	}
	r.Usage = env.Usage()
	r.Notes = env.Notes()
	switch {
	case res.err == nil:
	case errors.Is(res.err, agent.ErrToolBudget) || errors.Is(res.err, agent.ErrLLMBudget):
		r.Outcome, r.Error = OutcomeBudget, res.err.Error()
		return fmt.Errorf("run %s: %w", a.Name(), res.err)
	case errors.Is(res.err, context.DeadlineExceeded) && ctx.Err() == nil:
		r.Outcome, r.Error = OutcomeTimeout, fmt.Sprintf("timed out after %s", lim.Timeout)
		return fmt.Errorf("run %s: %w", a.Name(), res.err)
	default:
		r.Outcome, r.Error = OutcomeFailed, res.err.Error()
		return fmt.Errorf("run %s: %w", a.Name(), res.err)
	}
	var valid []mission.Card
	for _, c := range res.cards {
		if err := c.Validate(a.Actions()); err != nil {
			r.Rejected = append(r.Rejected, fmt.Sprintf("%s: %v", c.SubjectKey, err))
			continue
		}
		if s.writer != nil && rctx.Err() == nil {
			if err := env.Polish(rctx, &c); err != nil && !errors.Is(err, agent.ErrLLMBudget) {
				s.log.WarnContext(ctx, "llm polish skipped", "agent", a.Name(), "card", c.ID, "error", err)
			}
		}
		valid = append(valid, c)
	}
	r.Usage = env.Usage()
	r.Usage.Cards = len(valid)
	if len(valid) > 0 && s.sink != nil {
		ids, err := s.sink.SaveCards(ctx, valid)
		if err != nil {
			r.Outcome, r.Error = OutcomeFailed, "save cards: "+err.Error()
			return fmt.Errorf("run %s: save cards: %w", a.Name(), err)
		}
		r.CardIDs = ids
	}
	r.Outcome = OutcomeOK
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "run_" + hex.EncodeToString(b[:])
}
