// Package llm is the classifier backend for any OpenAI-compatible server
// (github.com/sashabaranov/go-openai): emails are packed into batches by a
// token budget, each batch is classified with one call per taxonomy section
// against a shortlist drawn from the whole taxonomy by embedding similarity,
// every answer is validated against the taxonomy and the shortlist (an invalid
// answer is retried once with the validation error), and one batched evidence
// judge call per batch grades the evidence: weak evidence lowers confidence,
// inappropriate evidence blocks the category, and nothing the model says can
// raise confidence past the judge. Secrets are redacted before anything
// leaves the box; calls are bounded per process, retried with backoff on
// 429/5xx/timeouts, and their tokens charged to a monthly budget.
//
// A Backend is safe for concurrent use; its concurrency bound is shared by
// all callers in the process.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
)

// Name is the backend name recorded in provenance.
const Name = "llm"

// Config configures the backend; zero values take the defaults.
type Config struct {
	BaseURL string // OWNYOU_LLM_BASE_URL, e.g. http://127.0.0.1:8080/v1
	Model   string // OWNYOU_LLM_MODEL
	APIKey  string // OWNYOU_LLM_API_KEY (may be empty for local servers)

	Taxonomies *taxonomy.Set
	// Embedder ranks categories against emails for the shortlist.
	Embedder core.Embedder
	// FallbackEmbedder, when set, ranks while Embedder is not usable: Embedder
	// (the embedder service over NATS) is then prepared in the background,
	// used once its category vectors are ready, and left alone for a minute
	// after any failure. Without it, Embedder must work in New.
	FallbackEmbedder core.Embedder
	// EmbedderStatus, when set, is told whenever the shortlist switches to the
	// fallback (with the reason) or back to Embedder.
	EmbedderStatus func(ctx context.Context, fallback bool, reason error)
	// EmbedderRetry is how long Embedder is left alone after a failure (default 1 min).
	EmbedderRetry time.Duration
	// Sections classified per batch (default: all audience sections and content).
	Sections []taxonomy.Section
	// Shortlist is the number of candidates per section for large sections;
	// sections with at most Shortlist categories are offered whole.
	Shortlist int
	// BatchTokens is the prompt token budget for the emails of one call;
	// MaxBatch and MinBatch bound the number of emails per call.
	BatchTokens, MaxBatch int
	// ExcerptChars is the length of the cleaned excerpt per email.
	ExcerptChars int
	// Concurrency bounds in-flight calls in this process.
	Concurrency int
	// CallTimeout bounds one HTTP call; MaxRetries and Backoff govern retries
	// of 429, 5xx, timeouts and connection errors.
	CallTimeout time.Duration
	MaxRetries  int
	Backoff     time.Duration
	// JSONObject asks for {"type":"json_object"} instead of json_schema, for
	// servers that do not support structured outputs.
	JSONObject bool
	Budget     Budget
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Defaults.
const (
	DefaultShortlist    = 60
	DefaultBatchTokens  = 6000
	DefaultMaxBatch     = 50
	DefaultExcerptChars = 600
	DefaultConcurrency  = 4
	DefaultCallTimeout  = 90 * time.Second
	DefaultMaxRetries   = 4
	DefaultBackoff      = 500 * time.Millisecond
)

// Errors.
var (
	ErrConfig = errors.New("llm classifier: bad config")
	// ErrAnswer reports an answer still invalid after the corrective retry.
	ErrAnswer = errors.New("llm classifier: invalid answer after retry")
	// ErrRejected reports a request the server refuses (4xx other than 429):
	// retrying cannot help until the configuration changes.
	ErrRejected = errors.New("llm classifier: request rejected by the server")
)

// Backend is the LLM classifier.
type Backend struct {
	cfg Config
	// jsonObject is set once the server has refused json_schema: later calls
	// ask for json_object instead.
	jsonObject atomic.Bool
	client     *openai.Client
	slots      *slots
	log        *slog.Logger
	short      *shortlister
	// calls lists the sections asked in each call of a batch: the audience
	// sections small enough to be offered whole share one call, every
	// shortlisted section has its own.
	calls [][]taxonomy.Section
}

// New builds the backend and embeds the category paths for the shortlist.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.BaseURL == "" || cfg.Model == "" || cfg.Taxonomies == nil || cfg.Embedder == nil {
		return nil, fmt.Errorf("%w: base URL, model, taxonomies and embedder are required", ErrConfig)
	}
	if len(cfg.Sections) == 0 {
		cfg.Sections = append(append([]taxonomy.Section{}, taxonomy.AudienceSections...), taxonomy.SectionContent)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Shortlist, DefaultShortlist)
	def(&cfg.BatchTokens, DefaultBatchTokens)
	def(&cfg.MaxBatch, DefaultMaxBatch)
	def(&cfg.ExcerptChars, DefaultExcerptChars)
	def(&cfg.Concurrency, DefaultConcurrency)
	def(&cfg.MaxRetries, DefaultMaxRetries)
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	oc := openai.DefaultConfig(cfg.APIKey)
	oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPClient != nil {
		oc.HTTPClient = cfg.HTTPClient
	}
	short, err := newShortlister(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Backend{cfg: cfg, client: openai.NewClientWithConfig(oc), slots: newSlots(cfg.Concurrency), log: cfg.Logger, short: short,
		calls: planCalls(cfg.Sections, short)}, nil
}

// factSections are the audience sections about facts of the owner
// (demographics, household, personal attributes, personal finance: 187
// categories together). They are offered whole, in one call per batch.
var factSections = map[taxonomy.Section]bool{
	taxonomy.SectionDemographics: true, taxonomy.SectionHousehold: true,
	taxonomy.SectionPersonalAttributes: true, taxonomy.SectionPersonalFinance: true,
}

// planCalls folds the fact sections into one call, so a batch costs five
// calls instead of eight; the shortlisted sections (interests, purchase
// intent, content) keep a call each. Answers are still validated exactly: an
// id is accepted only from the candidates offered, and each classification
// carries its category's own section.
func planCalls(sections []taxonomy.Section, short *shortlister) [][]taxonomy.Section {
	var folded []taxonomy.Section
	var calls [][]taxonomy.Section
	for _, s := range sections {
		if factSections[s] && short.sections[s].whole {
			folded = append(folded, s)
			continue
		}
		calls = append(calls, []taxonomy.Section{s})
	}
	if len(folded) > 0 {
		calls = append([][]taxonomy.Section{folded}, calls...)
	}
	return calls
}

// Name is "llm".
func (b *Backend) Name() string { return Name }

// Model is the configured model id.
func (b *Backend) Model() string { return b.cfg.Model }

// Classify packs the emails into batches and classifies each batch. It
// returns ErrBudgetDeferred/ErrBudgetExhausted when the budget forbids the
// calls, and any other error when a batch could not be classified; partial
// results are never returned with an error, so a retry starts clean.
func (b *Backend) Classify(ctx context.Context, emails []core.Email) ([]core.Classification, error) {
	prep := make([]prepared, len(emails))
	for i, e := range emails {
		prep[i] = prepare(e, b.cfg.ExcerptChars)
	}
	var out []core.Classification
	for _, batch := range Pack(prep, b.cfg.BatchTokens, b.cfg.MaxBatch) {
		cls, err := b.classifyBatch(ctx, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, cls...)
	}
	return out, nil
}

func prepare(e core.Email, n int) prepared {
	text := strings.Join(strings.Fields(e.Text), " ")
	return prepared{
		email:   e,
		from:    Redact(clip(e.From, 200)),
		subject: Redact(clip(strings.Join(strings.Fields(e.Subject), " "), 300)),
		excerpt: Redact(clip(text, n)),
	}
}

// Pack splits emails into batches whose estimated prompt tokens stay within
// budget, with at most max emails each (an email larger than the budget gets
// a batch of its own).
func Pack(emails []prepared, budget, max int) [][]prepared {
	var out [][]prepared
	var cur []prepared
	tok := 0
	for _, p := range emails {
		t := p.tokens()
		if len(cur) > 0 && (tok+t > budget || len(cur) >= max) {
			out = append(out, cur)
			cur, tok = nil, 0
		}
		cur = append(cur, p)
		tok += t
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func (b *Backend) classifyBatch(ctx context.Context, batch []prepared) ([]core.Classification, error) {
	backfill := true
	for _, p := range batch {
		backfill = backfill && p.email.Backfill
	}
	if b.cfg.Budget != nil {
		if err := b.cfg.Budget.Allow(ctx, backfill); err != nil {
			return nil, err
		}
	}
	shortlists, _, err := b.short.forBatch(ctx, batch)
	if err != nil {
		return nil, err
	}
	// One call per planned call (bounded by the process's slots).
	results := make([][]judgeItem, len(b.calls))
	errs := make([]error, len(b.calls))
	var wg sync.WaitGroup
	for i, call := range b.calls {
		var cands []*taxonomy.Category
		for _, s := range call {
			cands = append(cands, shortlists[s]...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = b.classifySections(ctx, call, cands, batch)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var items []judgeItem
	for _, r := range results {
		items = append(items, r...)
	}
	if len(items) == 0 {
		return nil, nil
	}
	return b.judge(ctx, items, batch)
}

func (b *Backend) taxFor(s taxonomy.Section) *taxonomy.Taxonomy {
	if s == taxonomy.SectionContent {
		return b.cfg.Taxonomies.Content
	}
	return b.cfg.Taxonomies.Audience
}

// classifySections asks one call for the sections of call (all of one
// taxonomy) with their candidates cands.
func (b *Backend) classifySections(ctx context.Context, call []taxonomy.Section, cands []*taxonomy.Category, batch []prepared) ([]judgeItem, error) {
	if len(cands) == 0 {
		return nil, nil
	}
	s := call[0]
	name := string(s)
	title := sectionTitle(s)
	if len(call) > 1 {
		name = fmt.Sprint(call)
		names := make([]string, len(call))
		for i, sec := range call {
			names[i] = strings.ReplaceAll(string(sec), "_", " ")
		}
		title = strings.Join(names, ", ") + " of the mailbox owner (IAB Audience 1.1; each candidate's path starts with its section): only facts about the owner, never about senders or other people"
	}
	tax := b.taxFor(s)
	allowed := make(map[string]*taxonomy.Category, len(cands))
	for _, c := range cands {
		allowed[c.ID] = c
	}
	msgs := []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: fmt.Sprintf(classifySystem, title)},
		{Role: openai.ChatMessageRoleUser, Content: classifyUser(cands, tax, batch, len(call) > 1)},
	}
	for attempt := 0; ; attempt++ {
		content, err := b.complete(ctx, "classify", msgs, "classification", classifySchema, attempt > 0)
		if err != nil {
			return nil, fmt.Errorf("classify %s: %w", name, err)
		}
		items, problems := b.validate(content, tax, allowed, batch)
		if len(problems) == 0 {
			return items, nil
		}
		if attempt == 1 {
			if items == nil && isParseProblem(problems) {
				return nil, fmt.Errorf("classify %s: %w: %s", name, ErrAnswer, strings.Join(problems, "; "))
			}
			// Keep what validated; the invalid parts are dropped and logged.
			b.log.WarnContext(ctx, "llm answer still invalid after retry; invalid items dropped", "section", name, "problems", strings.Join(problems, "; "))
			return items, nil
		}
		msgs = append(msgs,
			openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: clip(content, 4000)},
			openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: "Your answer was invalid: " + strings.Join(problems, "; ") +
				". Answer again with the JSON format only, using only category ids from the candidate list and email numbers 1-" + fmt.Sprint(len(batch)) + "."})
	}
}

func isParseProblem(p []string) bool {
	return len(p) == 1 && strings.HasPrefix(p[0], "unparsable")
}

// validate checks an answer; items are the valid classifications (each in its
// category's own section), problems the reasons to ask again. Email numbers
// outside the batch are dropped silently: they cannot belong to any email of
// this batch.
func (b *Backend) validate(content string, tax *taxonomy.Taxonomy, allowed map[string]*taxonomy.Category, batch []prepared) ([]judgeItem, []string) {
	var ans classifyAnswer
	if err := parseJSON(content, &ans); err != nil {
		return nil, []string{"unparsable: " + err.Error()}
	}
	var items []judgeItem
	var problems []string
	seen := map[string]bool{}
	for _, it := range ans.Items {
		if it.Email < 1 || it.Email > len(batch) {
			continue
		}
		id := idString(it.CategoryID)
		cat := allowed[id]
		if cat == nil {
			if tax.Get(id) == nil {
				problems = append(problems, fmt.Sprintf("category_id %q does not exist", id))
			} else {
				problems = append(problems, fmt.Sprintf("category_id %q is not in the candidate list", id))
			}
			continue
		}
		key := fmt.Sprintf("%d/%s", it.Email, id)
		if seen[key] {
			continue
		}
		seen[key] = true
		conf := it.Confidence
		if conf <= 0 || conf > 1 {
			conf = 0.5 // out of range: no information, treat as middling
		}
		e := batch[it.Email-1].email
		items = append(items, judgeItem{
			email: it.Email, path: cat.PathString(),
			cls: core.Classification{
				EmailID: e.ID, Taxonomy: tax.Kind, CategoryID: id, Section: cat.Section, Confidence: conf,
				Evidence: clip(Redact(it.Evidence), 300), Backend: Name, Model: b.cfg.Model, PromptVersion: PromptVersion,
			},
		})
	}
	return items, problems
}

// Judge caps: the final confidence never exceeds the cap of the verdict.
var verdictCap = map[string]float64{
	core.EvidenceExplicit:   0.95,
	core.EvidenceContextual: 0.75,
	core.EvidenceWeak:       0.35,
}

func (b *Backend) judge(ctx context.Context, items []judgeItem, batch []prepared) ([]core.Classification, error) {
	msgs := []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: judgeSystem},
		{Role: openai.ChatMessageRoleUser, Content: judgeUser(items, batch)},
	}
	var verdicts map[int]string
	for attempt := 0; ; attempt++ {
		content, err := b.complete(ctx, "judge", msgs, "verdicts", judgeSchema, true)
		if err != nil {
			return nil, fmt.Errorf("judge: %w", err)
		}
		var ans judgeAnswer
		perr := parseJSON(content, &ans)
		if perr == nil {
			verdicts = map[int]string{}
			for _, v := range ans.Verdicts {
				if _, ok := verdictCap[v.Verdict]; ok || v.Verdict == core.EvidenceInappropriate {
					verdicts[v.Item] = v.Verdict
				}
			}
			break
		}
		if attempt == 1 {
			return nil, fmt.Errorf("judge: %w: %v", ErrAnswer, perr)
		}
		msgs = append(msgs,
			openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: clip(content, 4000)},
			openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: "Your answer was invalid: " + perr.Error() + ". Answer again with the JSON format only."})
	}
	var out []core.Classification
	for k, it := range items {
		v, ok := verdicts[k+1]
		if !ok {
			v = core.EvidenceWeak // an unjudged item never counts as more than weak
		}
		if v == core.EvidenceInappropriate {
			continue
		}
		// Evidence that is not in the email is at best weak.
		if v != core.EvidenceWeak && !quoted(it.cls.Evidence, batch[it.email-1]) {
			v = core.EvidenceWeak
		}
		c := it.cls
		c.EvidenceType = v
		if v == core.EvidenceWeak {
			c.Confidence *= 0.5
		}
		c.Confidence = min(c.Confidence, verdictCap[v])
		out = append(out, c)
	}
	return out, nil
}

// quoted reports whether the evidence appears in the email (case and spacing ignored).
func quoted(evidence string, p prepared) bool {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	ev := norm(evidence)
	if len(ev) < 3 {
		return false
	}
	return strings.Contains(norm(p.subject+" "+p.excerpt), ev)
}

func sectionTitle(s taxonomy.Section) string {
	switch s {
	case taxonomy.SectionContent:
		return "content topics of the email (IAB Content Taxonomy 3.1)"
	case taxonomy.SectionPurchaseIntent:
		return "purchase intent of the mailbox owner (IAB Audience 1.1): only when the owner is buying, booking or shopping for it"
	default:
		return strings.ReplaceAll(string(s), "_", " ") + " of the mailbox owner (IAB Audience 1.1): only facts about the owner, never about senders or other people"
	}
}

// complete makes one chat completion with retries, the process-wide
// concurrency bound, a per-call timeout and token accounting. Urgent calls
// (a batch's judge and corrective retries: the work that finishes a batch
// already started) take the next free slot before the first calls of later
// batches.
func (b *Backend) complete(ctx context.Context, op string, msgs []openai.ChatCompletionMessage, schemaName string, schema json.Marshaler, urgent bool) (string, error) {
	var lastErr error
	for attempt := 0; attempt <= b.cfg.MaxRetries; attempt++ {
		req := openai.ChatCompletionRequest{Model: b.cfg.Model, Messages: msgs, Temperature: 0}
		if b.cfg.JSONObject || b.jsonObject.Load() {
			req.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}
		} else {
			req.ResponseFormat = &openai.ChatCompletionResponseFormat{
				Type:       openai.ChatCompletionResponseFormatTypeJSONSchema,
				JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: schemaName, Schema: schema, Strict: true},
			}
		}
		if attempt > 0 {
			d := b.cfg.Backoff << (attempt - 1)
			d += time.Duration(rand.Int64N(int64(d)/2 + 1))
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", ctx.Err()
			case <-t.C:
			}
		}
		if err := b.slots.acquire(ctx, urgent); err != nil {
			return "", err
		}
		cctx, cancel := context.WithTimeout(ctx, b.cfg.CallTimeout)
		resp, err := b.client.CreateChatCompletion(cctx, req)
		cancel()
		b.slots.release()
		if err == nil {
			if b.cfg.Budget != nil {
				u := Usage{Prompt: resp.Usage.PromptTokens, Completion: resp.Usage.CompletionTokens}
				if u.Total() == 0 { // servers that omit usage: estimate
					for _, m := range msgs {
						u.Prompt += len(m.Content) / 4
					}
				}
				if rerr := b.cfg.Budget.Record(ctx, op, u); rerr != nil {
					b.log.WarnContext(ctx, "record token usage", "op", op, "err", rerr)
				}
			}
			if len(resp.Choices) == 0 {
				lastErr = fmt.Errorf("%s: empty choices", op)
				continue
			}
			return resp.Choices[0].Message.Content, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		lastErr = err
		if !retryable(err) {
			// A server without structured outputs refuses json_schema with a
			// 400: fall back to json_object (parsed tolerantly) once.
			if status(err) == http.StatusBadRequest && !b.cfg.JSONObject && !b.jsonObject.Load() {
				b.jsonObject.Store(true)
				b.log.WarnContext(ctx, "llm server refused json_schema; using json_object", "err", err)
				continue
			}
			return "", fmt.Errorf("%s call: %w: %w", op, ErrRejected, err)
		}
		b.log.InfoContext(ctx, "llm call failed, retrying", "op", op, "attempt", attempt+1, "err", err)
	}
	return "", fmt.Errorf("%s call: %d attempts: %w", op, b.cfg.MaxRetries+1, lastErr)
}

func status(err error) int {
	var api *openai.APIError
	if errors.As(err, &api) {
		return api.HTTPStatusCode
	}
	var re *openai.RequestError
	if errors.As(err, &re) {
		return re.HTTPStatusCode
	}
	return 0
}

// retryable: rate limits, server errors, timeouts and connection failures.
func retryable(err error) bool {
	var api *openai.APIError
	if errors.As(err, &api) {
		return api.HTTPStatusCode == http.StatusTooManyRequests || api.HTTPStatusCode >= 500 || api.HTTPStatusCode == http.StatusRequestTimeout
	}
	var re *openai.RequestError
	if errors.As(err, &re) {
		return re.HTTPStatusCode == http.StatusTooManyRequests || re.HTTPStatusCode >= 500 || re.HTTPStatusCode == http.StatusRequestTimeout || re.HTTPStatusCode == 0
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// Shortlist returns the candidate categories per section the backend would
// offer the model for these emails (as one batch), for inspection and evaluation.
func (b *Backend) Shortlist(ctx context.Context, emails []core.Email) (map[taxonomy.Section][]*taxonomy.Category, error) {
	prep := make([]prepared, len(emails))
	for i, e := range emails {
		prep[i] = prepare(e, b.cfg.ExcerptChars)
	}
	sl, _, err := b.short.forBatch(ctx, prep)
	return sl, err
}

// ShortlistModel is the id of the embedding model the next batch's shortlist
// is ranked with: Embedder's once ready, else FallbackEmbedder's.
func (b *Backend) ShortlistModel() string { return b.short.model() }
