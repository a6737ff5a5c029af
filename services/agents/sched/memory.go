package sched

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/ownyou/home/pkg/mission"
)

// MemoryRuns is an in-memory RunStore for tests and demos.
type MemoryRuns struct {
	mu   sync.Mutex
	runs map[string]Run
}

// SaveRun implements RunStore.
func (m *MemoryRuns) SaveRun(_ context.Context, r Run) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs == nil {
		m.runs = map[string]Run{}
	}
	m.runs[r.ID] = r
	return nil
}

// LastOK implements RunStore.
func (m *MemoryRuns) LastOK(_ context.Context, agent, subject string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last time.Time
	for _, r := range m.runs {
		if r.Agent == agent && r.Subject == subject && r.Outcome == OutcomeOK && r.End.After(last) {
			last = r.End
		}
	}
	return last, nil
}

// Runs returns the stored runs, oldest first.
func (m *MemoryRuns) Runs() []Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Run
	for _, r := range m.runs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// MemoryCards is an in-memory CardSink that merges by id like the real
// store.
type MemoryCards struct {
	mu    sync.Mutex
	Cards map[string]mission.Card
	// Created and Updated count the events the real sink would publish.
	Created, Updated int
}

// SaveCards implements CardSink.
func (m *MemoryCards) SaveCards(_ context.Context, cards []mission.Card) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Cards == nil {
		m.Cards = map[string]mission.Card{}
	}
	var ids []string
	for _, c := range cards {
		if old, ok := m.Cards[c.ID]; ok {
			merged, changed := mission.Merge(old, c)
			m.Cards[c.ID] = merged
			if changed {
				m.Updated++
			}
		} else {
			m.Cards[c.ID] = c
			m.Created++
		}
		ids = append(ids, c.ID)
	}
	return ids, nil
}
