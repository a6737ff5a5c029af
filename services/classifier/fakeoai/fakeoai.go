// Package fakeoai is an OpenAI-compatible chat-completions server for tests
// and load tests: it speaks the real wire format (POST /v1/chat/completions,
// OpenAI error bodies), adds configurable latency, replays scripted replies
// (invalid ids, malformed JSON, 429s, hangs) and otherwise answers the
// classifier's prompts with valid, deterministic answers.
//
// A Server is safe for concurrent use.
package fakeoai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Reply is one scripted answer.
type Reply struct {
	Status  int           // HTTP status; 0 = 200
	Content string        // assistant message content (status 200)
	Delay   time.Duration // extra delay before answering
	Hang    bool          // never answer (until the client gives up)
}

// Server is the fake. Configure before serving.
type Server struct {
	// Latency is added to every call.
	Latency time.Duration
	// Script, when set, may return a reply for a call (n counts calls from 1);
	// ok=false falls back to the automatic answer.
	Script func(n int, req openai.ChatCompletionRequest) (r Reply, ok bool)

	mu       sync.Mutex
	calls    []openai.ChatCompletionRequest
	inFlight int
	peak     int
}

// Sequence returns a Script that plays the replies in order, then falls back.
func Sequence(replies ...Reply) func(int, openai.ChatCompletionRequest) (Reply, bool) {
	return func(n int, _ openai.ChatCompletionRequest) (Reply, bool) {
		if n <= len(replies) {
			return replies[n-1], true
		}
		return Reply{}, false
	}
}

// Calls returns the requests received so far.
func (s *Server) Calls() []openai.ChatCompletionRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]openai.ChatCompletionRequest(nil), s.calls...)
}

// Peak is the highest number of concurrent calls seen.
func (s *Server) Peak() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// ServeHTTP implements the chat completions endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		writeError(w, http.StatusNotFound, "not_found", "unknown endpoint "+r.URL.Path)
		return
	}
	var req openai.ChatCompletionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "bad JSON: "+err.Error())
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, req)
	n := len(s.calls)
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	var rep Reply
	ok := false
	if s.Script != nil {
		rep, ok = s.Script(n, req)
	}
	if !ok {
		rep = Reply{Content: Auto(req)}
	}
	wait := s.Latency + rep.Delay
	if rep.Hang {
		wait = time.Hour
	}
	select {
	case <-time.After(wait):
	case <-r.Context().Done():
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		writeError(w, rep.Status, "server_error", fmt.Sprintf("scripted status %d", rep.Status))
		return
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(m.Content) / 4
	}
	resp := openai.ChatCompletionResponse{
		ID: fmt.Sprintf("chatcmpl-%d", n), Object: "chat.completion", Created: time.Now().Unix(), Model: req.Model,
		Choices: []openai.ChatCompletionChoice{{Index: 0, FinishReason: openai.FinishReasonStop,
			Message: openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: rep.Content}}},
		Usage: openai.Usage{PromptTokens: prompt, CompletionTokens: len(rep.Content) / 4, TotalTokens: prompt + len(rep.Content)/4},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": nil}})
}

var (
	reEmail = regexp.MustCompile(`(?s)<email n=(\d+)>\n(.*?)</email>`)
	reItem  = regexp.MustCompile(`(?s)<item n=(\d+)>\n(.*?)</item>`)
	reWord  = regexp.MustCompile(`[a-z]{4,}`)
)

// Marks mirror the llm package's prompt markers (a wire contract, checked by its tests).
const (
	markCandidates = "CANDIDATES (id<TAB>category):"
	markItems      = "ITEMS:"
)

// Auto answers a classifier prompt validly: for a classification prompt, each
// email gets the candidate whose path words occur most in it (quoting the
// subject as evidence); for a judge prompt, every item is "contextual" except
// those whose email tries to instruct the classifier, which are "inappropriate".
func Auto(req openai.ChatCompletionRequest) string {
	user := ""
	for _, m := range req.Messages {
		if m.Role == openai.ChatMessageRoleUser {
			user = m.Content
			break
		}
	}
	if strings.HasPrefix(user, markItems) {
		type v struct {
			Item    int    `json:"item"`
			Verdict string `json:"verdict"`
		}
		var out []v
		for _, m := range reItem.FindAllStringSubmatch(user, -1) {
			k, _ := strconv.Atoi(m[1])
			verdict := "contextual"
			if strings.Contains(strings.ToLower(m[2]), "ignore previous instructions") {
				verdict = "inappropriate"
			}
			out = append(out, v{k, verdict})
		}
		b, _ := json.Marshal(map[string]any{"verdicts": out})
		return string(b)
	}
	type cand struct {
		id    string
		words []string
	}
	var cands []cand
	if i := strings.Index(user, markCandidates); i >= 0 {
		for _, line := range strings.Split(user[i+len(markCandidates):], "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				if len(cands) > 0 {
					break
				}
				continue
			}
			id, path, ok := strings.Cut(line, "\t")
			if !ok {
				break
			}
			cands = append(cands, cand{id, reWord.FindAllString(strings.ToLower(path), -1)})
		}
	}
	type item struct {
		Email      int     `json:"email"`
		CategoryID string  `json:"category_id"`
		Confidence float64 `json:"confidence"`
		Evidence   string  `json:"evidence"`
	}
	items := []item{}
	for _, m := range reEmail.FindAllStringSubmatch(user, -1) {
		n, _ := strconv.Atoi(m[1])
		text := strings.ToLower(m[2])
		best, bestScore := "", 0
		for _, c := range cands {
			score := 0
			for _, w := range c.words {
				if strings.Contains(text, w) {
					score++
				}
			}
			if score > bestScore {
				best, bestScore = c.id, score
			}
		}
		if best == "" {
			continue
		}
		subject := ""
		for _, line := range strings.Split(m[2], "\n") {
			if s, ok := strings.CutPrefix(line, "Subject: "); ok {
				subject = s
			}
		}
		items = append(items, item{n, best, 0.8, subject})
	}
	b, _ := json.Marshal(map[string]any{"items": items})
	return string(b)
}
