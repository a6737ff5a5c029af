package sched

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/agent"
	"github.com/ownyou/home/services/agents/trigger"
)

// stub is a test agent whose Run does what fn says.
type stub struct {
	name    string
	level   agent.Level
	actions []mission.ActionKind
	fn      func(ctx context.Context, env *agent.Env, in agent.Input) ([]mission.Card, error)
}

func (s stub) Name() string                  { return s.name }
func (s stub) Level() agent.Level            { return s.level }
func (s stub) Actions() []mission.ActionKind { return s.actions }
func (s stub) Run(ctx context.Context, env *agent.Env, in agent.Input) ([]mission.Card, error) {
	return s.fn(ctx, env, in)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func card(agentName, key string) mission.Card {
	c := mission.New(agentName, "k", key, time.Now())
	c.Title = "t"
	c.Evidence = []mission.Evidence{{EmailID: "e1", Excerpt: "x"}}
	return c
}

func job(agentName, subject string, cool time.Duration) trigger.Job {
	return trigger.Job{Agent: agentName, Trigger: trigger.DataClassified, Subject: subject, CoolDown: cool, Input: agent.Input{Subject: subject}}
}

func TestSameAgentAndSubjectNeverRunTwiceAtOnce(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	a := stub{name: "slow", level: agent.L1, fn: func(ctx context.Context, _ *agent.Env, _ agent.Input) ([]mission.Card, error) {
		started <- struct{}{}
		<-release
		return nil, nil
	}}
	runs := &MemoryRuns{}
	s := New(Config{Concurrency: 2}, []agent.Agent{a}, &agent.Memory{}, nil, runs, &MemoryCards{}, quiet)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = s.Run(context.Background(), job("slow", "mailbox", 0)) }()
	<-started
	if _, err := s.Run(context.Background(), job("slow", "mailbox", 0)); !errors.Is(err, ErrRunning) {
		t.Fatalf("second run on same subject = %v, want ErrRunning", err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = s.Run(context.Background(), job("slow", "other", 0)) }()
	select {
	case <-started: // a different subject runs alongside (concurrency 2)
	case <-time.After(30 * time.Second):
		t.Fatal("different subject did not start")
	}
	close(release)
	wg.Wait()
	if n := len(runs.Runs()); n != 2 {
		t.Fatalf("%d run records, want 2", n)
	}
}

func TestPerAgentConcurrencyLimit(t *testing.T) {
	var mu sync.Mutex
	active, peak := 0, 0
	a := stub{name: "one", level: agent.L1, fn: func(context.Context, *agent.Env, agent.Input) ([]mission.Card, error) {
		mu.Lock()
		active++
		peak = max(peak, active)
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		active--
		mu.Unlock()
		return nil, nil
	}}
	s := New(Config{Concurrency: 1}, []agent.Agent{a}, &agent.Memory{}, nil, &MemoryRuns{}, nil, quiet)
	var wg sync.WaitGroup
	for _, subj := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = s.Run(context.Background(), job("one", subj, 0)) }()
	}
	wg.Wait()
	if peak != 1 {
		t.Fatalf("peak concurrency = %d, want 1", peak)
	}
}

func TestCoolDownSkipsRecentSuccessButNotFailure(t *testing.T) {
	fail := true
	a := stub{name: "cd", level: agent.L1, fn: func(context.Context, *agent.Env, agent.Input) ([]mission.Card, error) {
		if fail {
			return nil, errors.New("imap down")
		}
		return nil, nil
	}}
	runs := &MemoryRuns{}
	s := New(Config{}, []agent.Agent{a}, &agent.Memory{}, nil, runs, nil, quiet)
	clock := time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	if r, err := s.Run(context.Background(), job("cd", "mailbox", time.Hour)); err == nil || r.Outcome != OutcomeFailed {
		t.Fatalf("failing run = %+v, %v", r, err)
	}
	fail = false
	if r, err := s.Run(context.Background(), job("cd", "mailbox", time.Hour)); err != nil || r.Outcome != OutcomeOK {
		t.Fatalf("retry after failure = %+v, %v", r, err)
	}
	clock = clock.Add(30 * time.Minute)
	if _, err := s.Run(context.Background(), job("cd", "mailbox", time.Hour)); !errors.Is(err, ErrCoolingDown) {
		t.Fatalf("run within cool-down = %v, want ErrCoolingDown", err)
	}
	// a fresh scheduler (restart) still honours the cool-down from stored runs
	s2 := New(Config{}, []agent.Agent{a}, &agent.Memory{}, nil, runs, nil, quiet)
	s2.now = func() time.Time { return clock }
	if _, err := s2.Run(context.Background(), job("cd", "mailbox", time.Hour)); !errors.Is(err, ErrCoolingDown) {
		t.Fatalf("after restart = %v, want ErrCoolingDown", err)
	}
	clock = clock.Add(31 * time.Minute)
	if _, err := s.Run(context.Background(), job("cd", "mailbox", time.Hour)); err != nil {
		t.Fatalf("after cool-down = %v", err)
	}
}

func TestLimitsAreEnforced(t *testing.T) {
	hog := stub{name: "hog", level: agent.L1, fn: func(ctx context.Context, env *agent.Env, _ agent.Input) ([]mission.Card, error) {
		for {
			if _, err := env.SearchEmails(ctx, agent.EmailQuery{}); err != nil {
				return nil, err
			}
		}
	}}
	sleeper := stub{name: "sleeper", level: agent.L1, fn: func(ctx context.Context, _ *agent.Env, _ agent.Input) ([]mission.Card, error) {
		time.Sleep(time.Hour) // ignores ctx, as a buggy agent might
		return nil, nil
	}}
	panicker := stub{name: "panicker", level: agent.L1, fn: func(context.Context, *agent.Env, agent.Input) ([]mission.Card, error) {
		panic("boom")
	}}
	tests := []struct {
		agent     stub
		want      Outcome
		toolCalls int
	}{
		{hog, OutcomeBudget, 3},
		{sleeper, OutcomeTimeout, 0},
		{panicker, OutcomeFailed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.agent.name, func(t *testing.T) {
			runs := &MemoryRuns{}
			s := New(Config{Limits: map[string]agent.Limits{"sleeper": {ToolCalls: 3, LLMCalls: 2, Timeout: 50 * time.Millisecond}}},
				[]agent.Agent{tt.agent}, &agent.Memory{}, nil, runs, nil, quiet)
			start := time.Now()
			r, err := s.Run(context.Background(), job(tt.agent.name, "x", 0))
			if err == nil || r.Outcome != tt.want || r.Usage.ToolCalls != tt.toolCalls {
				t.Fatalf("run = %+v, %v; want outcome %s with %d tool calls", r, err, tt.want, tt.toolCalls)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatal("run was not cut off")
			}
			stored := runs.Runs()
			if len(stored) != 1 || stored[0].Outcome != tt.want || stored[0].End.IsZero() {
				t.Fatalf("stored = %+v", stored)
			}
		})
	}
	if l := agent.L1.Limits(); l.ToolCalls != 3 || l.LLMCalls != 2 || l.Timeout != 30*time.Second {
		t.Fatalf("L1 = %+v", l)
	}
	if l := agent.L2.Limits(); l.ToolCalls != 10 || l.LLMCalls != 5 || l.Timeout != 120*time.Second {
		t.Fatalf("L2 = %+v", l)
	}
	if l := agent.L3.Limits(); l.ToolCalls != 25 || l.LLMCalls != 10 || l.Timeout != 300*time.Second {
		t.Fatalf("L3 = %+v", l)
	}
}

func TestInvalidCardsAreRejectedAndRecorded(t *testing.T) {
	a := stub{name: "bad", level: agent.L1, actions: []mission.ActionKind{mission.ActionOpenEmail}, fn: func(context.Context, *agent.Env, agent.Input) ([]mission.Card, error) {
		good := card("bad", "good")
		noEvidence := card("bad", "empty")
		noEvidence.Evidence = nil
		sneaky := card("bad", "sneaky")
		act := mission.NewAction("Connect", mission.SourceConnect{Kind: "imap"})
		sneaky.Primary = &act
		return []mission.Card{good, noEvidence, sneaky}, nil
	}}
	cards := &MemoryCards{}
	s := New(Config{}, []agent.Agent{a}, &agent.Memory{}, nil, &MemoryRuns{}, cards, quiet)
	r, err := s.Run(context.Background(), job("bad", "x", 0))
	if err != nil || r.Outcome != OutcomeOK || len(r.CardIDs) != 1 || len(r.Rejected) != 2 || len(cards.Cards) != 1 {
		t.Fatalf("run = %+v, %v", r, err)
	}
}

func TestRealAgentRunStoresCardsIdempotently(t *testing.T) {
	data := &agent.Memory{Emails: []agent.Email{{ID: "e1", SourceID: "s", From: "OpenTable <x@opentable.example>",
		Subject: "Your reservation at Bistro Verde is confirmed", Date: time.Now().Add(-time.Hour),
		Body: "Table for 2 on " + time.Now().AddDate(0, 0, 3).Format("Monday, 2 January 2006") + " at 7:30 PM.\nConfirmation #: BV-55120"}}}
	cards := &MemoryCards{}
	s := New(Config{}, agent.All(agent.Providers{}), data, nil, &MemoryRuns{}, cards, quiet)
	for i := 0; i < 2; i++ {
		r, err := s.Run(context.Background(), job("restaurant", "mailbox", 0))
		if err != nil || len(r.CardIDs) != 1 {
			t.Fatalf("run %d = %+v, %v", i, r, err)
		}
	}
	if cards.Created != 1 || len(cards.Cards) != 1 {
		t.Fatalf("created %d cards over two runs on the same evidence, want 1", cards.Created)
	}
}
