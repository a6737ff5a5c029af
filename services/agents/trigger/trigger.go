// Package trigger decides when agents run: the trigger table (which agents
// a kind of trigger wakes and the input each receives), the debouncer that
// batches data triggers, cron schedules, event triggers for bookings that
// are coming up, and intent routing of free-text user requests.
package trigger

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/agent"
)

// Kind is a kind of trigger.
type Kind string

// Trigger kinds.
const (
	DataClassified   Kind = "data.classified" // new classifications arrived
	DataProfile      Kind = "data.profile"    // the profile changed
	DailyDigest      Kind = "schedule.daily_digest"
	WeeklyReview     Kind = "schedule.weekly_review"
	WeeklyDiagnostic Kind = "schedule.weekly_diagnostic"
	EventApproaching Kind = "event.approaching" // a booked date is near
	UserRequest      Kind = "user.request"      // POST /api/v1/requests
)

// Trigger is one reason to run agents.
type Trigger struct {
	Kind       Kind
	At         time.Time
	EmailIDs   []string       // data.classified: the mails
	Categories []string       // data.classified: their categories
	Agent      string         // event and request triggers name their agent
	Subject    string         // event and request triggers: what it is about
	Request    *agent.Request // user.request
}

// Job is one agent run a trigger asks for.
type Job struct {
	Agent    string
	Trigger  Kind
	Subject  string // runs dedupe on agent+subject
	Input    agent.Input
	CoolDown time.Duration // minimum gap after a successful run on the same agent+subject; 0 = none
}

// route is one row of the trigger table.
type route struct {
	agents   []string      // agents woken; empty = the trigger names its agent
	coolDown time.Duration // per agent+subject
	filter   func(t Trigger, agent string) bool
}

// agentCategories are the profile/classification category prefixes each
// data-driven agent cares about.
var agentCategories = map[string][]string{
	"travel":     {"travel"},
	"shopping":   {"shopping", "consumer electronics", "style & fashion", "home & garden", "business and finance"},
	"restaurant": {"food & drink", "dining"},
	"events":     {"events", "music", "arts & entertainment", "sports", "movies", "television"},
	"content":    {"technology", "news", "science", "books", "education", "hobbies"},
}

func matchesAgent(t Trigger, name string) bool {
	if len(t.Categories) == 0 {
		return true // unknown categories: let every agent look
	}
	for _, c := range t.Categories {
		lc := strings.ToLower(c)
		for _, p := range agentCategories[name] {
			if strings.Contains(lc, p) {
				return true
			}
		}
	}
	return false
}

// Table maps each trigger kind to the agents it wakes. Data triggers carry
// a cool-down so a burst of mail wakes each agent at most once per window.
var table = map[Kind]route{
	DataClassified:   {agents: []string{"travel", "shopping", "restaurant", "events"}, coolDown: 10 * time.Minute, filter: matchesAgent},
	DataProfile:      {agents: []string{"content", "events", "restaurant"}, coolDown: time.Hour},
	DailyDigest:      {agents: []string{"content", "shopping"}, coolDown: 12 * time.Hour},
	WeeklyReview:     {agents: []string{"travel", "shopping", "restaurant", "events", "content"}, coolDown: 3 * 24 * time.Hour},
	WeeklyDiagnostic: {agents: []string{"diagnostic"}, coolDown: 3 * 24 * time.Hour},
	EventApproaching: {coolDown: 24 * time.Hour},
	UserRequest:      {},
}

// Agents returns the agents the kind wakes (nil for kinds that name their
// agent in the trigger).
func Agents(k Kind) []string { return slices.Clone(table[k].agents) }

// Plan turns a trigger into the jobs to run, each with the input built for
// its agent. An unknown kind is an error.
func Plan(t Trigger) ([]Job, error) {
	r, ok := table[t.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown trigger kind %q", t.Kind)
	}
	names := r.agents
	if len(names) == 0 {
		if t.Agent == "" {
			return nil, fmt.Errorf("trigger %s names no agent", t.Kind)
		}
		names = []string{t.Agent}
	}
	var jobs []Job
	for _, n := range names {
		if r.filter != nil && !r.filter(t, n) {
			continue
		}
		in := agent.Input{Trigger: string(t.Kind), Now: t.At, Subject: subject(t)}
		switch t.Kind {
		case DataClassified:
			in.EmailIDs = slices.Clone(t.EmailIDs)
		case UserRequest:
			in.Request = t.Request
		}
		jobs = append(jobs, Job{Agent: n, Trigger: t.Kind, Subject: in.Subject, Input: in, CoolDown: r.coolDown})
	}
	return jobs, nil
}

// subject is what runs dedupe on: data triggers dedupe per agent (the whole
// mailbox), schedules per kind, events and requests per their subject.
func subject(t Trigger) string {
	switch t.Kind {
	case DataClassified, DataProfile:
		return "mailbox"
	case EventApproaching:
		return "event:" + t.Subject
	case UserRequest:
		if t.Request != nil {
			return "request:" + t.Request.ID
		}
		return "request:" + t.Subject
	}
	return string(t.Kind)
}

// Approaching returns event triggers for cards whose event (a trip, a table,
// a concert) starts within window after now, so their agent refreshes them
// (urgency rises as the date nears). Closed cards are skipped.
func Approaching(cards []mission.Card, now time.Time, window time.Duration) []Trigger {
	var out []Trigger
	for _, c := range cards {
		if c.EventAt.IsZero() || c.Status.Closed() || !c.EventAt.After(now) || c.EventAt.Sub(now) > window {
			continue
		}
		out = append(out, Trigger{Kind: EventApproaching, At: now, Agent: c.Agent, Subject: c.ID})
	}
	return out
}
