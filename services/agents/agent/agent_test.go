package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/mission"
)

// now is the clock of every fixture run: Wednesday 18 November 2026.
var now = time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)

// loadMailbox reads testdata/<dir>/*.eml; X-Id, X-Source and X-Categories
// headers carry what ingest and classification would have stored.
func loadMailbox(t *testing.T, dir string) []Email {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	var out []Email
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(fh)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		body, _ := io.ReadAll(m.Body)
		fh.Close()
		d, err := m.Header.Date()
		if err != nil {
			t.Fatalf("%s: date: %v", f, err)
		}
		var cats []string
		for _, c := range strings.Split(m.Header.Get("X-Categories"), ",") {
			if c = strings.TrimSpace(c); c != "" {
				cats = append(cats, c)
			}
		}
		out = append(out, Email{ID: m.Header.Get("X-Id"), SourceID: m.Header.Get("X-Source"), From: m.Header.Get("From"),
			Subject: m.Header.Get("Subject"), Body: string(body), Date: d.UTC(), Categories: cats})
	}
	return out
}

type wantCard struct {
	Kind       string   `json:"kind"`
	SubjectKey string   `json:"subject_key"`
	Title      string   `json:"title"`
	Summary    string   `json:"summary"` // exact, when given
	Evidence   []string `json:"evidence"`
	Details    []string `json:"details"` // substrings that must appear in the card's details
	Actions    []string `json:"actions"` // primary then secondary kinds
	Urgency    int      `json:"urgency"`
}

func loadWant(t *testing.T, dir string) []wantCard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, "want.json"))
	if err != nil {
		t.Fatal(err)
	}
	var w []wantCard
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("want.json: %v", err)
	}
	return w
}

var fixtureProfile = Profile{Interests: []Interest{
	{Category: "IAB19", Name: "Technology & Computing", Confidence: 0.8, Evidence: 40},
	{Category: "IAB8-5", Name: "Food & Drink > Cooking", Confidence: 0.6, Evidence: 12},
	{Category: "IAB8-9", Name: "Food & Drink > Dining Out", Confidence: 0.5, Evidence: 9},
	{Category: "IAB1-6", Name: "Music & Audio > Jazz", Confidence: 0.7, Evidence: 8},
	{Category: "IAB20", Name: "Travel", Confidence: 0.9, Evidence: 30},
}}

func runAgent(t *testing.T, a Agent, data Data, in Input) []mission.Card {
	t.Helper()
	env := NewEnv(data, nil, a.Level().Limits())
	cards, err := a.Run(context.Background(), env, in)
	if err != nil {
		t.Fatalf("%s.Run: %v", a.Name(), err)
	}
	for _, c := range cards {
		if err := c.Validate(a.Actions()); err != nil {
			t.Errorf("card %q invalid: %v", c.Title, err)
		}
	}
	return cards
}

func checkCards(t *testing.T, got []mission.Card, want []wantCard) {
	t.Helper()
	byKey := map[string]mission.Card{}
	var keys []string
	for _, c := range got {
		byKey[c.SubjectKey] = c
		keys = append(keys, c.SubjectKey)
	}
	sort.Strings(keys)
	var wantKeys []string
	for _, w := range want {
		wantKeys = append(wantKeys, w.SubjectKey)
	}
	sort.Strings(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		for _, c := range got {
			t.Logf("got %s: %s\n%s", c.SubjectKey, c.Title, c.Summary)
		}
		t.Fatalf("cards = %v, want %v", keys, wantKeys)
	}
	for _, w := range want {
		c := byKey[w.SubjectKey]
		if c.Kind != w.Kind || c.Title != w.Title {
			t.Errorf("%s: kind/title = %q/%q, want %q/%q", w.SubjectKey, c.Kind, c.Title, w.Kind, w.Title)
		}
		if w.Summary != "" && c.Summary != w.Summary {
			t.Errorf("%s: summary = %q, want %q", w.SubjectKey, c.Summary, w.Summary)
		}
		var ev []string
		for _, e := range c.Evidence {
			ev = append(ev, firstNonEmpty(e.EmailID, e.SourceID))
			if strings.TrimSpace(e.Excerpt) == "" {
				t.Errorf("%s: evidence %s has no excerpt", w.SubjectKey, e.EmailID)
			}
		}
		if !slices.Equal(ev, w.Evidence) {
			t.Errorf("%s: evidence = %v, want %v", w.SubjectKey, ev, w.Evidence)
		}
		var details strings.Builder
		for _, d := range c.Details {
			details.WriteString(d.Label + ": " + d.Value + "\n")
		}
		for _, s := range w.Details {
			if !strings.Contains(details.String(), s) {
				t.Errorf("%s: details lack %q:\n%s", w.SubjectKey, s, details.String())
			}
		}
		var acts []string
		if c.Primary != nil {
			acts = append(acts, string(c.Primary.Kind))
		}
		for _, a := range c.Secondary {
			acts = append(acts, string(a.Kind))
		}
		if !slices.Equal(acts, w.Actions) {
			t.Errorf("%s: actions = %v, want %v", w.SubjectKey, acts, w.Actions)
		}
		if int(c.Urgency) != w.Urgency {
			t.Errorf("%s: urgency = %d, want %d", w.SubjectKey, c.Urgency, w.Urgency)
		}
	}
}

func TestAgentsProduceExpectedCardsFromFixtureMailboxes(t *testing.T) {
	tests := []struct {
		dir   string
		agent Agent
	}{
		{"travel", Travel{}},
		{"shopping", Shopping{}},
		{"restaurant", Restaurant{}},
		{"events", Events{}},
		{"content", Content{}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			data := &Memory{Emails: loadMailbox(t, tt.dir), Prof: fixtureProfile}
			got := runAgent(t, tt.agent, data, Input{Trigger: "schedule", Now: now})
			checkCards(t, got, loadWant(t, tt.dir))
		})
	}
}

func TestAgentsMakeNoCardsWithoutEvidence(t *testing.T) {
	unrelated := loadMailbox(t, "content") // newsletters only: no bookings, orders or tickets
	for _, a := range []Agent{Travel{}, Shopping{}, Restaurant{}, Events{}} {
		data := &Memory{Emails: unrelated, Prof: fixtureProfile}
		if got := runAgent(t, a, data, Input{Now: now}); len(got) != 0 {
			t.Errorf("%s made %d cards from a mailbox without evidence: %s", a.Name(), len(got), got[0].Title)
		}
	}
	if got := runAgent(t, Diagnostic{}, &Memory{}, Input{Now: now}); len(got) != 0 {
		t.Errorf("diagnostic reported on no sources: %v", got)
	}
}

func TestDiagnosticReportsSourcesAndSuggests(t *testing.T) {
	weekly := []int{120, 110, 130, 125, 40, 35, 30, 20}
	data := &Memory{Prof: fixtureProfile, SourceStats: []SourceStat{{
		ID: "gmail-1", Kind: "gmail", Name: "alex@example.com", Emails: 1200, Classified: 1000, Embedded: 1150,
		Errors: 3, LastImport: now.AddDate(0, 0, -9), Weekly: weekly,
	}}}
	got := runAgent(t, Diagnostic{}, data, Input{Now: now})
	checkCards(t, got, []wantCard{{
		Kind: "report", SubjectKey: "diagnostic:2026-W47", Title: "Weekly check: 1200 mails across 1 source",
		Evidence: []string{"gmail-1"},
		Details:  []string{"1200 mails, 83% classified, 95% embedded, 3 errors, last import 9 days ago", "mail volume fell 74% over the last four weeks (125 vs 485)", "5 interests, 5 with confidence"},
		Actions:  []string{"connect_source", "connect_source"}, Urgency: 1,
	}})
	if !strings.Contains(got[0].Summary, "only one mail source is connected") {
		t.Errorf("summary lacks the connect suggestion: %s", got[0].Summary)
	}
}

func TestAgentsLearnFromDismissals(t *testing.T) {
	data := &Memory{Emails: loadMailbox(t, "shopping"), Prof: fixtureProfile}
	for i := 0; i < 3; i++ {
		data.AddFeedback(mission.Feedback{Agent: "shopping", CardKind: "watch", Kind: mission.FeedbackDismiss, At: now})
	}
	for _, c := range runAgent(t, Shopping{}, data, Input{Now: now}) {
		if c.Kind == "watch" {
			t.Fatalf("watch card %q made after three dismissals", c.Title)
		}
	}
}

func TestToolBudgetIsEnforced(t *testing.T) {
	data := &Memory{Emails: loadMailbox(t, "restaurant"), Prof: fixtureProfile}
	env := NewEnv(data, nil, Limits{ToolCalls: 2, LLMCalls: 0, Timeout: time.Second})
	_, err := Restaurant{}.Run(context.Background(), env, Input{Now: now})
	if !errors.Is(err, ErrToolBudget) {
		t.Fatalf("Run with 2 tool calls = %v, want ErrToolBudget", err)
	}
	if u := env.Usage(); u.ToolCalls != 2 {
		t.Fatalf("usage = %+v, want 2 tool calls", u)
	}
}

func TestTravelAnswersRequestForOnePlace(t *testing.T) {
	data := &Memory{Emails: loadMailbox(t, "travel"), Prof: fixtureProfile}
	got := runAgent(t, Travel{}, data, Input{Now: now, Request: &Request{Text: "what's missing for Paris?", Entities: Entities{Places: []string{"Paris"}}}})
	if len(got) != 1 || !strings.HasPrefix(got[0].Title, "Trip to Paris") {
		t.Fatalf("request for Paris gave %d cards", len(got))
	}
}
