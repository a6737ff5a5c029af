package trigger

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a named cron schedule firing one trigger kind.
type Schedule struct {
	Kind Kind
	Spec string
	cron cron.Schedule
}

// DefaultSchedules is "daily_digest=0 7 * * *;weekly_review=0 18 * * 0;weekly_diagnostic=0 6 * * 1":
// the digest every morning at 07:00, the review on Sunday evening and the
// diagnostic on Monday morning, in the server's local time zone.
const DefaultSchedules = "daily_digest=0 7 * * *;weekly_review=0 18 * * 0;weekly_diagnostic=0 6 * * 1"

var scheduleKinds = map[string]Kind{"daily_digest": DailyDigest, "weekly_review": WeeklyReview, "weekly_diagnostic": WeeklyDiagnostic}

// ParseSchedules reads "name=cron spec;name=spec" with standard five-field
// cron specs or descriptors (@daily, @weekly, @every 1h). Names are
// daily_digest, weekly_review and weekly_diagnostic; an empty spec disables
// one ("weekly_review=").
func ParseSchedules(s string) ([]Schedule, error) {
	var out []Schedule
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, spec, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("schedule %q: want name=spec", part)
		}
		kind, ok := scheduleKinds[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("schedule %q: unknown name", name)
		}
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		c, err := cron.ParseStandard(spec)
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", name, err)
		}
		out = append(out, Schedule{Kind: kind, Spec: spec, cron: c})
	}
	return out, nil
}

// Due returns the triggers of every schedule firing in (from, to], in time
// order, each at its firing time.
func Due(scheds []Schedule, from, to time.Time) []Trigger {
	var out []Trigger
	for _, s := range scheds {
		for t := s.cron.Next(from); !t.IsZero() && !t.After(to); t = s.cron.Next(t) {
			out = append(out, Trigger{Kind: s.Kind, At: t})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// next returns the earliest firing after t.
func next(scheds []Schedule, t time.Time) time.Time {
	var n time.Time
	for _, s := range scheds {
		if x := s.cron.Next(t); !x.IsZero() && (n.IsZero() || x.Before(n)) {
			n = x
		}
	}
	return n
}

// RunSchedules fires the schedules' triggers until ctx ends. A firing
// missed while the machine slept is fired late, once.
func RunSchedules(ctx context.Context, scheds []Schedule, fire func(Trigger)) error {
	if len(scheds) == 0 {
		<-ctx.Done()
		return nil
	}
	last := time.Now()
	for {
		n := next(scheds, last)
		timer := time.NewTimer(time.Until(n))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		now := time.Now()
		due := Due(scheds, last, now)
		seen := map[Kind]bool{}
		for _, t := range due {
			if !seen[t.Kind] { // several missed firings of one schedule collapse into one
				seen[t.Kind] = true
				fire(t)
			}
		}
		last = now
	}
}
