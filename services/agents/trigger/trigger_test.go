package trigger

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/agent"
)

var now = time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)

func TestPlanBuildsInputPerAgent(t *testing.T) {
	tests := []struct {
		name       string
		trig       Trigger
		wantAgents []string
		wantErr    bool
	}{
		{"travel mail wakes only travel", Trigger{Kind: DataClassified, At: now, EmailIDs: []string{"e1"}, Categories: []string{"Travel > Air Travel"}}, []string{"travel"}, false},
		{"unknown categories wake every data agent", Trigger{Kind: DataClassified, At: now, EmailIDs: []string{"e1"}}, []string{"travel", "shopping", "restaurant", "events"}, false},
		{"weekly diagnostic", Trigger{Kind: WeeklyDiagnostic, At: now}, []string{"diagnostic"}, false},
		{"request goes to its agent", Trigger{Kind: UserRequest, At: now, Agent: "events", Request: &agent.Request{ID: "r1", Text: "concerts"}}, []string{"events"}, false},
		{"request without agent fails", Trigger{Kind: UserRequest, At: now}, nil, true},
		{"unknown kind fails", Trigger{Kind: "data.weather", At: now}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := Plan(tt.trig)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Plan err = %v", err)
			}
			var names []string
			for _, j := range jobs {
				names = append(names, j.Agent)
				if j.Input.Trigger != string(tt.trig.Kind) || !j.Input.Now.Equal(now) || j.Subject != j.Input.Subject {
					t.Errorf("job %s input = %+v", j.Agent, j.Input)
				}
				if tt.trig.Kind == DataClassified && !slices.Equal(j.Input.EmailIDs, tt.trig.EmailIDs) {
					t.Errorf("job %s lost the mail ids", j.Agent)
				}
				if tt.trig.Kind == UserRequest && j.Input.Request != tt.trig.Request {
					t.Errorf("job %s lost the request", j.Agent)
				}
			}
			if !slices.Equal(names, tt.wantAgents) {
				t.Fatalf("agents = %v, want %v", names, tt.wantAgents)
			}
		})
	}
}

func TestDebouncerMergesBursts(t *testing.T) {
	var mu sync.Mutex
	var fired []Trigger
	d := NewDebouncer(40*time.Millisecond, time.Second, func(tr Trigger) {
		mu.Lock()
		fired = append(fired, tr)
		mu.Unlock()
	})
	d.Add(Trigger{Kind: DataClassified, At: now, EmailIDs: []string{"a"}, Categories: []string{"Travel"}})
	d.Add(Trigger{Kind: DataClassified, At: now.Add(time.Second), EmailIDs: []string{"b", "a"}, Categories: []string{"Shopping"}})
	d.Add(Trigger{Kind: DataProfile, At: now})
	time.Sleep(150 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(fired) != 2 {
		t.Fatalf("fired %d triggers, want 2 (one per kind)", len(fired))
	}
	for _, f := range fired {
		if f.Kind == DataClassified && (!slices.Equal(f.EmailIDs, []string{"a", "b"}) || len(f.Categories) != 2 || !f.At.Equal(now.Add(time.Second))) {
			t.Fatalf("merged trigger = %+v", f)
		}
	}
}

func TestDebouncerFiresByMaxWaitUnderSteadyTraffic(t *testing.T) {
	fired := make(chan Trigger, 10)
	d := NewDebouncer(50*time.Millisecond, 120*time.Millisecond, func(tr Trigger) { fired <- tr })
	defer d.Stop()
	deadline := time.After(400 * time.Millisecond)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			d.Add(Trigger{Kind: DataClassified, At: now})
		case <-fired:
			return
		case <-deadline:
			t.Fatal("steady traffic starved the debouncer past maxWait")
		}
	}
}

func TestDebouncerDiscardFiresNothing(t *testing.T) {
	fired := make(chan Trigger, 1)
	d := NewDebouncer(20*time.Millisecond, time.Second, func(tr Trigger) { fired <- tr })
	d.Add(Trigger{Kind: DataClassified, At: now})
	d.Discard()
	d.Add(Trigger{Kind: DataClassified, At: now})
	select {
	case tr := <-fired:
		t.Fatalf("discarded debouncer fired %+v", tr)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestSchedules(t *testing.T) {
	s, err := ParseSchedules(DefaultSchedules)
	if err != nil || len(s) != 3 {
		t.Fatalf("ParseSchedules(default) = %v, %v", s, err)
	}
	// Wed 18 Nov 09:00 → Mon 23 Nov 09:00: five digests, one review (Sun), one diagnostic (Mon 06:00)
	due := Due(s, now, now.AddDate(0, 0, 5))
	count := map[Kind]int{}
	for _, d := range due {
		count[d.Kind]++
	}
	if count[DailyDigest] != 5 || count[WeeklyReview] != 1 || count[WeeklyDiagnostic] != 1 {
		t.Fatalf("due = %v", count)
	}
	if first := due[0]; first.Kind != DailyDigest || !first.At.Equal(time.Date(2026, 11, 19, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("first = %+v", first)
	}
	for _, bad := range []string{"daily_digest=61 * * * *", "nightly=@daily", "daily_digest"} {
		if _, err := ParseSchedules(bad); err == nil {
			t.Errorf("ParseSchedules(%q) accepted", bad)
		}
	}
	off, err := ParseSchedules("weekly_review=;weekly_diagnostic=@every 1h")
	if err != nil || len(off) != 1 || off[0].Kind != WeeklyDiagnostic {
		t.Fatalf("disable/descriptor = %v, %v", off, err)
	}
}

func TestApproachingFindsCardsInWindow(t *testing.T) {
	mk := func(key string, at time.Time, st mission.Status) mission.Card {
		c := mission.New("travel", "trip", key, now)
		c.EventAt, c.Status = at, st
		return c
	}
	cards := []mission.Card{
		mk("soon", now.Add(20*time.Hour), mission.StatusPresented),
		mk("later", now.Add(5*24*time.Hour), mission.StatusPresented),
		mk("past", now.Add(-time.Hour), mission.StatusPresented),
		mk("dismissed", now.Add(time.Hour), mission.StatusDismissed),
		{ID: "no-date", Agent: "content"},
	}
	got := Approaching(cards, now, 48*time.Hour)
	if len(got) != 1 || got[0].Subject != cards[0].ID || got[0].Agent != "travel" {
		t.Fatalf("Approaching = %+v", got)
	}
	jobs, _ := Plan(got[0])
	if len(jobs) != 1 || jobs[0].CoolDown != 24*time.Hour {
		t.Fatalf("event job = %+v", jobs)
	}
}

func TestRouteRequests(t *testing.T) {
	tests := []struct {
		text      string
		want      string
		wantPlace string
		wantDate  time.Time
	}{
		{"What's missing for my trip to Paris next Friday?", "travel", "Paris", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)},
		{"When does BA 117 leave?", "travel", "", time.Time{}},
		{"Is the Kindle cheaper than $130 anywhere?", "shopping", "", time.Time{}},
		{"Book a table for dinner in Lisbon tomorrow", "restaurant", "Lisbon", time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)},
		{"any concerts coming up?", "events", "", time.Time{}},
		{"something good to read this weekend", "content", "", time.Time{}},
		{"is my gmail sync working?", "diagnostic", "", time.Time{}},
	}
	for _, tt := range tests {
		got, ents, err := Route(tt.text, now)
		if err != nil || got != tt.want {
			t.Errorf("Route(%q) = %q, %v; want %q", tt.text, got, err, tt.want)
			continue
		}
		if tt.wantPlace != "" && !slices.Contains(ents.Places, tt.wantPlace) {
			t.Errorf("Route(%q) places = %v", tt.text, ents.Places)
		}
		if !tt.wantDate.IsZero() && (len(ents.Dates) == 0 || !ents.Dates[0].Equal(tt.wantDate)) {
			t.Errorf("Route(%q) dates = %v", tt.text, ents.Dates)
		}
	}
	if _, _, err := Route("hello there", now); !errors.Is(err, ErrNoIntent) {
		t.Errorf("Route(hello) err = %v, want ErrNoIntent", err)
	}
}
