// Package agent holds the six mission agents (shopping, travel, restaurant,
// events, content, diagnostic), the data-access interface they read the
// user's mail, profile, cards and feedback through, the per-run environment
// that enforces the level's tool-call and LLM-call budgets, and the optional
// LLM writer that polishes titles and summaries.
//
// Agents are stateless: Run may be called concurrently for different inputs.
// They never invent facts: every card is built from extracted mail facts
// and carries the emails that justify it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/extract"
)

// Email is one mail as agents see it.
type Email struct {
	ID         string
	SourceID   string
	From       string
	Subject    string
	Body       string // plain text
	Date       time.Time
	Categories []string // classification labels (IAB names)
}

// Message returns the mail in the form extraction reads.
func (e Email) Message() extract.Message {
	return extract.Message{From: e.From, Subject: e.Subject, Body: e.Body, Date: e.Date}
}

// EmailQuery selects mail: by search text (any word may match), by
// category, by ids and by date. Zero fields do not filter.
type EmailQuery struct {
	Text       string
	Categories []string
	IDs        []string
	Since      time.Time
	Until      time.Time
	Limit      int
}

// Interest is one profile entry.
type Interest struct {
	Category   string  // IAB id or name
	Name       string  // human name, e.g. "Travel > Air Travel"
	Confidence float64 // 0..1
	Evidence   int     // emails supporting it
}

// Profile is the user's interest profile.
type Profile struct {
	Interests []Interest
	UpdatedAt time.Time
}

// Confidence returns the highest confidence of an interest whose category
// or name contains name (case-insensitive); 0 when none does.
func (p Profile) Confidence(name string) float64 {
	best := 0.0
	n := strings.ToLower(name)
	if n == "" {
		return 0
	}
	for _, i := range p.Interests {
		if strings.Contains(strings.ToLower(i.Name), n) || strings.EqualFold(i.Category, name) {
			best = max(best, i.Confidence)
		}
	}
	return best
}

// SourceStat describes one connected mail source for the diagnostic agent.
type SourceStat struct {
	ID         string
	Kind       string // gmail, imap, mbox
	Name       string // account or file
	Emails     int
	Classified int
	Embedded   int
	Errors     int
	LastImport time.Time
	Weekly     []int // mails received per week, oldest first, the last entry is the current week
}

// Found is the mail a search returned, most relevant first as far as the
// search can tell, with notes on what it could not do (e.g. "semantic
// search unavailable: …, keywords only") that belong in the run record.
type Found struct {
	Emails []Email
	Notes  []string
}

// Data is what agents read. Implementations must be safe for concurrent use.
type Data interface {
	// SearchEmails finds the evidence mail for q. A search that works
	// around a missing part (no query vector) returns what it found with a
	// note, not an error.
	SearchEmails(ctx context.Context, q EmailQuery) (Found, error)
	Profile(ctx context.Context) (Profile, error)
	Cards(ctx context.Context, agent string) ([]mission.Card, error)
	Feedback(ctx context.Context, agent string) ([]mission.Feedback, error)
	Sources(ctx context.Context) ([]SourceStat, error)
}

// Level is an agent's autonomy level; it sets the run's limits.
type Level int

// Agent levels.
const (
	L1 Level = 1
	L2 Level = 2
	L3 Level = 3
)

// Limits bound one agent run.
type Limits struct {
	ToolCalls int
	LLMCalls  int
	Timeout   time.Duration
}

// Limits returns the level's limits: L1 3/2/30 s, L2 10/5/120 s, L3 25/10/300 s.
func (l Level) Limits() Limits {
	switch l {
	case L1:
		return Limits{ToolCalls: 3, LLMCalls: 2, Timeout: 30 * time.Second}
	case L2:
		return Limits{ToolCalls: 10, LLMCalls: 5, Timeout: 120 * time.Second}
	default:
		return Limits{ToolCalls: 25, LLMCalls: 10, Timeout: 300 * time.Second}
	}
}

// Entities are the facts extracted from a user's free-text request.
type Entities struct {
	Dates   []time.Time `json:"dates,omitempty"`
	Places  []string    `json:"places,omitempty"`
	Amounts []string    `json:"amounts,omitempty"`
	Codes   []string    `json:"codes,omitempty"`
	Terms   []string    `json:"terms,omitempty"` // remaining content words
}

// Request is a user's free-text request routed to an agent.
type Request struct {
	ID       string   `json:"id"`
	Text     string   `json:"text"`
	Entities Entities `json:"entities"`
}

// Input is what one agent run receives, built for the agent by the trigger
// table.
type Input struct {
	Trigger  string    // trigger kind that caused the run
	Subject  string    // what the run is about; runs dedupe on agent+subject
	Now      time.Time // the run's clock
	EmailIDs []string  // mails that caused a data trigger
	Request  *Request  // set for user requests
}

// Agent is one mission agent.
type Agent interface {
	// Name is the agent's stable name; card ids derive from it.
	Name() string
	// Level sets the run's limits.
	Level() Level
	// Actions lists the only action kinds the agent's cards may carry.
	Actions() []mission.ActionKind
	// Run reads through env and returns fresh cards (unmerged with stored ones).
	Run(ctx context.Context, env *Env, in Input) ([]mission.Card, error)
}

// Budget errors: the run used up a limit.
var (
	ErrToolBudget = errors.New("tool-call budget exhausted")
	ErrLLMBudget  = errors.New("llm-call budget exhausted")
)

// Usage counts what a run consumed.
type Usage struct {
	ToolCalls int `json:"tool_calls"`
	LLMCalls  int `json:"llm_calls"`
	Cards     int `json:"cards"`
}

// Env is one run's access to data and the LLM, counting every call against
// the run's limits. Safe for concurrent use.
type Env struct {
	data   Data
	writer Writer
	limits Limits
	mu     sync.Mutex
	usage  Usage
	notes  []string
}

// NewEnv returns an environment over data with the given limits; writer
// may be nil (no LLM).
func NewEnv(data Data, writer Writer, limits Limits) *Env {
	return &Env{data: data, writer: writer, limits: limits}
}

// Usage returns the calls made so far.
func (e *Env) Usage() Usage {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.usage
}

// Notes returns what the run's searches noted they could not do, each once.
func (e *Env) Notes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.notes)
}

func (e *Env) note(ns []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range ns {
		if !slices.Contains(e.notes, n) {
			e.notes = append(e.notes, n)
		}
	}
}

func (e *Env) tool() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.usage.ToolCalls >= e.limits.ToolCalls {
		return ErrToolBudget
	}
	e.usage.ToolCalls++
	return nil
}

// SearchEmails searches mail; one tool call. The search's notes are kept
// for the run record (Notes).
func (e *Env) SearchEmails(ctx context.Context, q EmailQuery) ([]Email, error) {
	if err := e.tool(); err != nil {
		return nil, err
	}
	r, err := e.data.SearchEmails(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("search emails: %w", err)
	}
	e.note(r.Notes)
	return r.Emails, nil
}

// Profile reads the interest profile; one tool call.
func (e *Env) Profile(ctx context.Context) (Profile, error) {
	if err := e.tool(); err != nil {
		return Profile{}, err
	}
	p, err := e.data.Profile(ctx)
	if err != nil {
		return Profile{}, fmt.Errorf("read profile: %w", err)
	}
	return p, nil
}

// Cards reads the agent's earlier cards; one tool call.
func (e *Env) Cards(ctx context.Context, agent string) ([]mission.Card, error) {
	if err := e.tool(); err != nil {
		return nil, err
	}
	c, err := e.data.Cards(ctx, agent)
	if err != nil {
		return nil, fmt.Errorf("read cards: %w", err)
	}
	return c, nil
}

// Feedback reads the feedback on the agent's cards; one tool call.
func (e *Env) Feedback(ctx context.Context, agent string) ([]mission.Feedback, error) {
	if err := e.tool(); err != nil {
		return nil, err
	}
	f, err := e.data.Feedback(ctx, agent)
	if err != nil {
		return nil, fmt.Errorf("read feedback: %w", err)
	}
	return f, nil
}

// Sources reads per-source statistics; one tool call.
func (e *Env) Sources(ctx context.Context) ([]SourceStat, error) {
	if err := e.tool(); err != nil {
		return nil, err
	}
	s, err := e.data.Sources(ctx)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	return s, nil
}

// HasWriter reports whether an LLM writer is configured.
func (e *Env) HasWriter() bool { return e.writer != nil }

// Polish asks the LLM writer for a better title and summary, one LLM call.
// Without a writer it returns ErrNoWriter; past the budget ErrLLMBudget.
// The result is accepted only if it passes Sanitize; the card's actions,
// evidence and facts are never touched.
func (e *Env) Polish(ctx context.Context, c *mission.Card) error {
	if e.writer == nil {
		return ErrNoWriter
	}
	e.mu.Lock()
	if e.usage.LLMCalls >= e.limits.LLMCalls {
		e.mu.Unlock()
		return ErrLLMBudget
	}
	e.usage.LLMCalls++
	e.mu.Unlock()
	d := Draft{Agent: c.Agent, Kind: c.Kind, Title: c.Title, Summary: c.Summary}
	for _, x := range c.Details {
		d.Facts = append(d.Facts, x.Label+": "+x.Value)
	}
	out, err := e.writer.Write(ctx, d)
	if err != nil {
		return fmt.Errorf("llm write: %w", err)
	}
	title, summary, err := Sanitize(d, out)
	if err != nil {
		return err
	}
	c.Title, c.Summary = title, summary
	return nil
}

// common helpers for agents

func evidenceOf(e Email, excerpt string) mission.Evidence {
	if excerpt == "" {
		excerpt = extract.Excerpt(e.Body, 200)
	}
	return mission.Evidence{EmailID: e.ID, SourceID: e.SourceID, Subject: e.Subject, Date: e.Date, Excerpt: excerpt}
}

func openEmail(e Email) mission.Action {
	return mission.NewAction("Open the email", mission.EmailRef{EmailID: e.ID})
}

// readMail makes the two reads every mail agent starts with: the mail
// search q and the preferences learnt from feedback on agent's cards.
func readMail(ctx context.Context, env *Env, agent string, q EmailQuery) ([]Email, mission.Prefs, error) {
	es, err := env.SearchEmails(ctx, q)
	if err != nil {
		return nil, mission.Prefs{}, err
	}
	fb, err := env.Feedback(ctx, agent)
	if err != nil {
		return nil, mission.Prefs{}, err
	}
	return es, mission.Learn(fb), nil
}

func dedupeEvidence(ev []mission.Evidence) []mission.Evidence {
	seen := map[string]bool{}
	var out []mission.Evidence
	for _, e := range ev {
		k := e.EmailID + "|" + e.SourceID
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

func sortByDate(es []Email) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Date.Before(es[j].Date) })
}

func fmtDay(t time.Time) string { return t.Format("Mon 2 Jan 2006") }

func fmtWhen(t time.Time, hasTime bool) string {
	if hasTime {
		return t.Format("Mon 2 Jan 2006 15:04")
	}
	return fmtDay(t)
}

func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
}

func requestText(in Input) string {
	if in.Request == nil {
		return ""
	}
	return " " + strings.Join(in.Request.Entities.Terms, " ")
}

// All returns the six agents, wired with their optional providers.
func All(p Providers) []Agent {
	return []Agent{
		Shopping{Prices: p.Prices},
		Travel{Flights: p.Flights},
		Restaurant{},
		Events{Lister: p.Events},
		Content{},
		Diagnostic{},
	}
}

// Providers are optional external data sources. There is no default: a nil
// provider means the agent uses only what is in the user's mail.
type Providers struct {
	Prices  PriceProvider
	Flights FlightStatusProvider
	Events  EventLister
}

// EventLister finds upcoming events at a real event-listings service.
// Implementations must be safe for concurrent use.
type EventLister interface {
	// Name names the service on the cards built from its listings.
	Name() string
	// UpcomingEvents returns events matching any of q's interests in q's
	// place between q.From and q.To; finding none is an empty list, not an
	// error.
	UpcomingEvents(ctx context.Context, q EventQuery) ([]ListedEvent, error)
}

// EventQuery asks an EventLister for events.
type EventQuery struct {
	Interests []string  // profile interest names, e.g. "Music & Audio > Jazz"
	Place     string    // city
	From, To  time.Time // window of the events' start
	Limit     int
}

// ListedEvent is one event as the listings service reports it; the agent
// shows these fields and nothing else.
type ListedEvent struct {
	ID      string    // the service's id, stable across calls
	Name    string    // event name
	Start   time.Time // start; zero = unknown (the event is not shown)
	HasTime bool      // Start carries a time of day
	Venue   string    // venue and address; empty = unknown (the event is not shown)
	URL     string    // the service's page for the event, optional
}

// FlightStatusProvider reports a flight's live status from a real flight
// data service.
type FlightStatusProvider interface {
	// FlightStatus returns a short status ("on time", "delayed 40 min",
	// "gate B12") for the flight departing on day, ok=false if unknown.
	FlightStatus(ctx context.Context, number string, day time.Time) (status string, ok bool, err error)
}

// PriceProvider looks up a product's current price at a real shop.
type PriceProvider interface {
	// CurrentPrice returns the price, where it was seen, or ok=false when the
	// product is unknown to the provider.
	CurrentPrice(ctx context.Context, product string) (price extract.Amount, seller string, ok bool, err error)
}
