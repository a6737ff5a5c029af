package sched

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/agent"
)

// TestRunPolishesCardsWithinTheLLMBudget runs a real agent writer against an
// OpenAI-compatible fake: the first two cards (L1 budget) get new wording,
// the third keeps the agent's own, and the run records two LLM calls.
func TestRunPolishesCardsWithinTheLLMBudget(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "x", "object": "chat.completion", "model": "m",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": `{"title":"Polished","summary":"Better words."}`}}},
		})
	}))
	defer srv.Close()
	a := stub{name: "three", level: agent.L1, actions: []mission.ActionKind{mission.ActionOpenEmail},
		fn: func(context.Context, *agent.Env, agent.Input) ([]mission.Card, error) {
			return []mission.Card{card("three", "a"), card("three", "b"), card("three", "c")}, nil
		}}
	cards := &MemoryCards{}
	s := New(Config{}, []agent.Agent{a}, &agent.Memory{}, agent.NewOpenAIWriter(srv.URL+"/v1", "", "m"), &MemoryRuns{}, cards, quiet)
	r, err := s.Run(context.Background(), job("three", "x", 0))
	if err != nil || r.Usage.LLMCalls != 2 || calls.Load() != 2 {
		t.Fatalf("run = %+v, %v; server calls %d", r, err, calls.Load())
	}
	polished := 0
	for _, c := range cards.Cards {
		if c.Title == "Polished" {
			polished++
		}
	}
	if polished != 2 {
		t.Fatalf("%d cards polished, want 2", polished)
	}
}
