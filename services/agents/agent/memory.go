package agent

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ownyou/home/pkg/mission"
)

// Memory is an in-memory Data for tests, fixtures and demos. Text search
// matches a mail when any query word of three or more letters (a plural
// trimmed to its singular) appears in its subject or body. Safe for
// concurrent use.
type Memory struct {
	mu          sync.RWMutex
	Emails      []Email
	Prof        Profile
	CardsByID   map[string]mission.Card
	FeedbackLog []mission.Feedback
	SourceStats []SourceStat
}

// SearchEmails implements Data.
func (m *Memory) SearchEmails(_ context.Context, q EmailQuery) (Found, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var words []string
	for _, w := range strings.Fields(strings.ToLower(q.Text)) {
		if len(w) > 4 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = w[:len(w)-1] // as the Postgres search: a plural matches its singular
		}
		if len(w) >= 3 {
			words = append(words, w)
		}
	}
	var out []Email
	for _, e := range m.Emails {
		if !q.Since.IsZero() && e.Date.Before(q.Since) || !q.Until.IsZero() && !e.Date.Before(q.Until) {
			continue
		}
		if len(q.IDs) > 0 && !slices.Contains(q.IDs, e.ID) {
			continue
		}
		if len(q.Categories) > 0 && !overlaps(q.Categories, e.Categories) {
			continue
		}
		if len(words) > 0 {
			hay := strings.ToLower(e.Subject + " " + e.Body)
			hit := false
			for _, w := range words {
				if strings.Contains(hay, w) {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Date.After(out[j].Date) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return Found{Emails: out}, nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if strings.EqualFold(x, y) || strings.HasPrefix(strings.ToLower(y), strings.ToLower(x)) {
				return true
			}
		}
	}
	return false
}

// Profile implements Data.
func (m *Memory) Profile(context.Context) (Profile, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.Prof, nil
}

// Cards implements Data.
func (m *Memory) Cards(_ context.Context, agent string) ([]mission.Card, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []mission.Card
	for _, c := range m.CardsByID {
		if agent == "" || c.Agent == agent {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Feedback implements Data.
func (m *Memory) Feedback(_ context.Context, agent string) ([]mission.Feedback, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []mission.Feedback
	for _, f := range m.FeedbackLog {
		if agent == "" || f.Agent == agent {
			out = append(out, f)
		}
	}
	return out, nil
}

// Sources implements Data.
func (m *Memory) Sources(context.Context) ([]SourceStat, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.SourceStats), nil
}

// AddFeedback appends a feedback episode.
func (m *Memory) AddFeedback(f mission.Feedback) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.FeedbackLog = append(m.FeedbackLog, f)
}
