package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/services/agents/extract"
)

// Content builds a weekly reading digest from the newsletters the user
// received, ordered by how well each matches the profile's interests.
type Content struct{}

// Name implements Agent.
func (Content) Name() string { return "content" }

// Level implements Agent.
func (Content) Level() Level { return L1 }

// Actions implements Agent.
func (Content) Actions() []mission.ActionKind { return []mission.ActionKind{mission.ActionOpenEmail} }

func isNewsletter(e Email) bool {
	b := strings.ToLower(e.Body)
	return strings.Contains(b, "unsubscribe") || strings.Contains(b, "view in browser") || strings.Contains(b, "read online")
}

// Run implements Agent. Three tool calls: mail, profile, feedback.
func (ct Content) Run(ctx context.Context, env *Env, in Input) ([]mission.Card, error) {
	es, prefs, err := readMail(ctx, env, ct.Name(), EmailQuery{
		Text:  "newsletter digest weekly edition issue unsubscribe read online" + requestText(in),
		Since: in.Now.AddDate(0, 0, -7), Limit: 300,
	})
	if err != nil {
		return nil, err
	}
	profile, err := env.Profile(ctx)
	if err != nil {
		return nil, err
	}
	if prefs.Suppress(ct.Name(), "digest") {
		return nil, nil
	}
	type scored struct {
		e     Email
		score float64
		cat   string
	}
	var picks []scored
	for _, e := range es {
		if !isNewsletter(e) || extract.Classify(e.Message()) == extract.KindOrder {
			continue
		}
		best, cat := 0.0, ""
		for _, c := range e.Categories {
			if v := profile.Confidence(c); v > best {
				best, cat = v, c
			}
		}
		if best == 0 {
			continue // not one of the user's interests
		}
		picks = append(picks, scored{e, best, cat})
	}
	if len(picks) == 0 {
		return nil, nil
	}
	sort.SliceStable(picks, func(i, j int) bool {
		if picks[i].score != picks[j].score {
			return picks[i].score > picks[j].score
		}
		return picks[i].e.Date.After(picks[j].e.Date)
	})
	if len(picks) > 5 {
		picks = picks[:5]
	}
	y, w := in.Now.ISOWeek()
	c := mission.New(ct.Name(), "digest", fmt.Sprintf("digest:%d-W%02d", y, w), in.Now)
	c.Category = picks[0].cat
	c.Title = fmt.Sprintf("Your reading digest: %d pick%s this week", len(picks), plural(len(picks)))
	var lines []string
	for _, p := range picks {
		from := extract.SenderName(p.e.From)
		lines = append(lines, fmt.Sprintf("• %s — %s", p.e.Subject, from))
		c.Details = append(c.Details, mission.Detail{Label: from, Value: p.e.Subject})
		c.Evidence = append(c.Evidence, evidenceOf(p.e, firstSentence(p.e.Body)))
		if len(c.Secondary) < 4 && p.e.ID != picks[0].e.ID {
			c.Secondary = append(c.Secondary, mission.NewAction("Read: "+extract.Excerpt(p.e.Subject, 60), mission.EmailRef{EmailID: p.e.ID}))
		}
	}
	c.Summary = strings.Join(lines, "\n")
	pa := mission.NewAction("Read: "+extract.Excerpt(picks[0].e.Subject, 60), mission.EmailRef{EmailID: picks[0].e.ID})
	c.Primary = &pa
	c.Urgency = mission.UrgencyLow
	c.ExpiresAt = in.Now.AddDate(0, 0, 7)
	return []mission.Card{c}, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func firstSentence(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if i := strings.IndexAny(s, ".!?"); i > 20 {
		s = s[:i+1]
	}
	return extract.Excerpt(s, 200)
}

// Diagnostic reports per-source completeness, profile coverage and mail
// patterns over time, with suggestions (connect another source, retry a
// failing import).
type Diagnostic struct{}

// Name implements Agent.
func (Diagnostic) Name() string { return "diagnostic" }

// Level implements Agent.
func (Diagnostic) Level() Level { return L1 }

// Actions implements Agent.
func (Diagnostic) Actions() []mission.ActionKind {
	return []mission.ActionKind{mission.ActionConnectSource, mission.ActionSearchMail}
}

// Run implements Agent. Two tool calls: sources and profile.
func (d Diagnostic) Run(ctx context.Context, env *Env, in Input) ([]mission.Card, error) {
	srcs, err := env.Sources(ctx)
	if err != nil {
		return nil, err
	}
	profile, err := env.Profile(ctx)
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, nil // nothing to report on yet; the UI's setup flow covers this
	}
	y, w := in.Now.ISOWeek()
	c := mission.New(d.Name(), "report", fmt.Sprintf("diagnostic:%d-W%02d", y, w), in.Now)
	var lines, problems []string
	total := 0
	kinds := map[string]bool{}
	for _, s := range srcs {
		total += s.Emails
		kinds[s.Kind] = true
		v := fmt.Sprintf("%d mails, %s classified, %s embedded", s.Emails, pct(s.Classified, s.Emails), pct(s.Embedded, s.Emails))
		if s.Errors > 0 {
			v += fmt.Sprintf(", %d errors", s.Errors)
			problems = append(problems, fmt.Sprintf("%s has %d import errors", s.Name, s.Errors))
		}
		if s.Emails > 0 && float64(s.Classified)/float64(s.Emails) < 0.9 {
			problems = append(problems, fmt.Sprintf("%s is only %s classified", s.Name, pct(s.Classified, s.Emails)))
		}
		if !s.LastImport.IsZero() && in.Now.Sub(s.LastImport) > 7*24*time.Hour {
			days := int(in.Now.Sub(s.LastImport).Hours() / 24)
			v += fmt.Sprintf(", last import %d days ago", days)
			problems = append(problems, fmt.Sprintf("%s has not synced for %d days", s.Name, days))
		}
		label := s.Kind + " " + s.Name
		c.Details = append(c.Details, mission.Detail{Label: label, Value: v})
		lines = append(lines, label+": "+v)
		c.Evidence = append(c.Evidence, mission.Evidence{SourceID: s.ID, Excerpt: label + ": " + v})
		if trend := weeklyTrend(s.Weekly); trend != "" {
			c.Details = append(c.Details, mission.Detail{Label: label + " trend", Value: trend})
			lines = append(lines, label+" trend: "+trend)
		}
	}
	strong := 0
	for _, i := range profile.Interests {
		if i.Confidence >= 0.5 {
			strong++
		}
	}
	cov := fmt.Sprintf("%d interests, %d with confidence ≥ 0.5", len(profile.Interests), strong)
	c.Details = append(c.Details, mission.Detail{Label: "Profile", Value: cov})
	lines = append(lines, "Profile: "+cov)
	if strong < 3 {
		problems = append(problems, "the profile is thin: few interests are well supported")
	}
	if len(srcs) == 1 {
		other := "imap"
		if kinds["imap"] {
			other = "gmail"
		}
		c.Secondary = append(c.Secondary, mission.NewAction("Connect another mailbox", mission.SourceConnect{Kind: other, Reason: "only one source is connected"}))
		problems = append(problems, "only one mail source is connected")
	}
	for _, s := range srcs {
		if s.Errors > 0 {
			c.Secondary = append(c.Secondary, mission.NewAction("Reconnect "+s.Name, mission.SourceConnect{Kind: s.Kind, Reason: fmt.Sprintf("%d import errors", s.Errors)}))
		}
	}
	c.Title = fmt.Sprintf("Weekly check: %d mails across %d source%s", total, len(srcs), plural(len(srcs)))
	if len(problems) > 0 {
		lines = append(lines, "Suggestions: "+strings.Join(problems, "; ")+".")
		c.Urgency = mission.UrgencyNormal
	} else {
		c.Urgency = mission.UrgencyLow
	}
	c.Summary = strings.Join(lines, "\n")
	if len(c.Secondary) > 0 {
		p := c.Secondary[0]
		c.Primary = &p
		c.Secondary = c.Secondary[1:]
	}
	c.ExpiresAt = in.Now.AddDate(0, 0, 7)
	return []mission.Card{c}, nil
}

func pct(a, b int) string {
	if b == 0 {
		return "0%"
	}
	return fmt.Sprintf("%d%%", a*100/b)
}

// weeklyTrend compares the last four weeks with the four before.
func weeklyTrend(w []int) string {
	if len(w) < 8 {
		return ""
	}
	sum := func(xs []int) int {
		t := 0
		for _, x := range xs {
			t += x
		}
		return t
	}
	recent, before := sum(w[len(w)-4:]), sum(w[len(w)-8:len(w)-4])
	if before == 0 {
		return ""
	}
	change := (recent - before) * 100 / before
	switch {
	case change <= -50:
		return fmt.Sprintf("mail volume fell %d%% over the last four weeks (%d vs %d)", -change, recent, before)
	case change >= 50:
		return fmt.Sprintf("mail volume rose %d%% over the last four weeks (%d vs %d)", change, recent, before)
	}
	return fmt.Sprintf("steady: %d mails in the last four weeks", recent)
}
