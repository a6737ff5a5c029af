package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/pkg/store"
)

// feedResponse is GET /api/v1/missions.
type feedResponse struct {
	Missions []rankedMission `json:"missions"`
	Count    int             `json:"count"`
}

type rankedMission struct {
	mission.Card
	Score float64 `json:"score"`
}

// listMissions serves the feed: visible cards ranked by urgency, event
// proximity, recency, learnt preferences, rating and profile confidence.
// Filters: agent, kind, status (comma-separated), limit. Cards shown for the
// first time move from created to presented.
func (s *Server) listMissions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, r, http.StatusBadRequest, "bad_limit", "limit must be 1..500")
			return
		}
		limit = n
	}
	f := store.MissionFilter{Agent: q.Get("agent"), Kind: q.Get("kind")}
	if st := q.Get("status"); st != "" {
		for _, x := range strings.Split(st, ",") {
			switch mission.Status(x) {
			case mission.StatusCreated, mission.StatusPresented, mission.StatusActive, mission.StatusSnoozed, mission.StatusDismissed, mission.StatusCompleted:
				f.Statuses = append(f.Statuses, x)
			default:
				writeError(w, r, http.StatusBadRequest, "bad_status", "unknown status "+strconv.Quote(x))
				return
			}
		}
	}
	e, err := s.feed.get(r.Context(), feedKey(f), func(ctx context.Context) ([]mission.Ranked, error) { return s.rankFeed(ctx, f) })
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if b, ok := s.feed.body(e, limit); ok {
		writeJSONBytes(w, b)
		return
	}
	ranked := e.ranked
	if len(ranked) > limit {
		ranked = ranked[:limit]
	}
	resp := feedResponse{Missions: []rankedMission{}}
	var fresh []string
	var freshCards []mission.Card
	for _, rk := range ranked {
		resp.Missions = append(resp.Missions, rankedMission{Card: rk.Card, Score: rk.Score})
		if rk.Card.Status == mission.StatusCreated {
			fresh = append(fresh, rk.Card.ID)
			freshCards = append(freshCards, rk.Card)
		}
	}
	resp.Count = len(resp.Missions)
	b, err := json.Marshal(resp)
	if err != nil {
		s.fail(w, r, fmt.Errorf("encode feed: %w", err))
		return
	}
	if len(fresh) == 0 {
		s.feed.setBody(e, limit, b) // nothing to mark: the same answer serves every reader
	} else if changed, err := s.db.MarkPresented(r.Context(), fresh); err != nil {
		s.log.WarnContext(r.Context(), "mark presented", "err", err)
	} else {
		s.feed.invalidate() // the cached cards still say created
		s.publishPresented(r.Context(), freshCards, changed)
	}
	writeJSONBytes(w, b)
}

// rankFeed reads the cards matching f and ranks them with the preferences
// learnt from all feedback.
func (s *Server) rankFeed(ctx context.Context, f store.MissionFilter) ([]mission.Ranked, error) {
	cards, err := s.db.Missions(ctx, f)
	if err != nil {
		return nil, err
	}
	fb, err := s.db.Feedback(ctx, "")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if len(f.Statuses) == 0 {
		return mission.Rank(cards, mission.Learn(fb), nil, now), nil
	}
	// an explicit status filter lists closed and snoozed cards too, still ranked
	ranked := mission.Rank(reopen(cards), mission.Learn(fb), nil, now)
	for i := range ranked {
		ranked[i].Card = byID(cards, ranked[i].Card.ID)
	}
	return ranked, nil
}

// publishPresented announces each created → presented change on
// missions.updated for the cards this feed changed (changed), as every status change is. The key names the
// transition, so two feeds racing to present one card publish it once
// (the stream dedupes by Msg-Id).
func (s *Server) publishPresented(ctx context.Context, cards []mission.Card, changed []string) {
	for _, c := range cards {
		if !slices.Contains(changed, c.ID) {
			continue // feedback or another feed changed it first
		}
		ev := bus.MissionEvent{MissionID: c.ID, Agent: c.Agent, Status: string(mission.StatusPresented)}
		if err := bus.Publish(ctx, s.bus, bus.MissionsUpdated, c.ID+":presented", ev); err != nil {
			// the change is stored; live views catch up on their next read
			s.log.WarnContext(ctx, "publish mission presented", "mission", c.ID, "err", err)
		}
	}
}

// reopen returns copies that Rank treats as visible, for explicit status listings.
func reopen(cards []mission.Card) []mission.Card {
	out := make([]mission.Card, len(cards))
	for i, c := range cards {
		c.Status, c.ExpiresAt, c.SnoozedUntil = mission.StatusActive, time.Time{}, time.Time{}
		out[i] = c
	}
	return out
}

func byID(cards []mission.Card, id string) mission.Card {
	for _, c := range cards {
		if c.ID == id {
			return c
		}
	}
	return mission.Card{}
}

type missionDetail struct {
	mission.Card
	History []mission.Feedback `json:"history"`
}

// getMission returns one card with its feedback history.
func (s *Server) getMission(w http.ResponseWriter, r *http.Request) {
	c, err := s.db.Mission(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, err := s.db.MissionFeedback(r.Context(), c.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if h == nil {
		h = []mission.Feedback{}
	}
	writeJSON(w, http.StatusOK, missionDetail{Card: c, History: h})
}

// feedbackRequest is the body of POST /api/v1/missions/{id}/feedback.
type feedbackRequest struct {
	Kind   string    `json:"kind"`   // rate | snooze | dismiss | complete
	Rating string    `json:"rating"` // meh | like | love (kind rate)
	Until  time.Time `json:"until"`  // kind snooze
	Note   string    `json:"note"`
}

// missionFeedback records meh/like/love, snooze, dismiss or complete as a
// feedback episode, changes the card and publishes missions.updated.
func (s *Server) missionFeedback(w http.ResponseWriter, r *http.Request) {
	var req feedbackRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_json", err.Error())
		return
	}
	kind := mission.FeedbackKind(req.Kind)
	switch kind {
	case mission.FeedbackRate, mission.FeedbackSnooze, mission.FeedbackDismiss, mission.FeedbackComplete:
	default:
		writeError(w, r, http.StatusBadRequest, "bad_feedback", "kind must be rate, snooze, dismiss or complete")
		return
	}
	s.applyFeedback(w, r, mission.Feedback{CardID: r.PathValue("id"), Kind: kind, Rating: mission.Rating(req.Rating),
		Until: req.Until, Note: req.Note, At: time.Now().UTC()}, nil)
}

func (s *Server) applyFeedback(w http.ResponseWriter, r *http.Request, f mission.Feedback, extra map[string]any) {
	if err := f.Validate(); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_feedback", err.Error())
		return
	}
	c, err := s.db.RecordFeedback(r.Context(), f)
	if err == nil {
		s.feed.invalidate() // before answering: the client's next feed read shows its change
	}
	switch {
	case errors.Is(err, mission.ErrBadTransition):
		writeError(w, r, http.StatusConflict, "bad_transition", err.Error())
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	ev := bus.MissionEvent{MissionID: c.ID, Agent: c.Agent, Status: string(c.Status)}
	key := fmt.Sprintf("%s:feedback:%d", c.ID, f.At.UnixNano())
	if err := bus.Publish(r.Context(), s.bus, bus.MissionsUpdated, key, ev); err != nil {
		// the change is stored; live views catch up on their next read
		s.log.WarnContext(r.Context(), "publish mission feedback", "mission", c.ID, "err", err)
	}
	if extra == nil {
		writeJSON(w, http.StatusOK, c)
		return
	}
	extra["mission"] = c
	writeJSON(w, http.StatusOK, extra)
}

// actionRequest is the body of POST /api/v1/missions/{id}/actions.
type actionRequest struct {
	Action int `json:"action"` // 0 = primary, 1… = secondary actions in order
}

// missionAction marks the card active and returns what the UI needs to
// carry out the action: an email link, an iCalendar event, or the payload.
func (s *Server) missionAction(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<12)).Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_json", err.Error())
		return
	}
	c, err := s.db.Mission(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var acts []mission.Action
	if c.Primary != nil {
		acts = append(acts, *c.Primary)
	}
	acts = append(acts, c.Secondary...)
	if req.Action < 0 || req.Action >= len(acts) {
		writeError(w, r, http.StatusBadRequest, "bad_action", fmt.Sprintf("card has %d actions", len(acts)))
		return
	}
	a := acts[req.Action]
	result := map[string]any{"action": a}
	switch p := a.Payload.(type) {
	case mission.EmailRef:
		result["email_url"] = "/api/v1/emails/" + p.EmailID
	case mission.CalendarEvent:
		result["ics"] = ics(c.ID, p)
	case mission.MailSearch:
		result["search_url"] = "/api/v1/emails?q=" + strings.ReplaceAll(p.Query, " ", "+")
	}
	s.applyFeedback(w, r, mission.Feedback{CardID: c.ID, Kind: mission.FeedbackActivate, Note: string(a.Kind), At: time.Now().UTC()}, result)
}

// ics renders a calendar event as an iCalendar document.
func ics(uid string, e mission.CalendarEvent) string {
	esc := strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`)
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//OwnYou Home//Missions//EN\r\nBEGIN:VEVENT\r\n")
	fmt.Fprintf(&b, "UID:%s@ownyou.home\r\nDTSTAMP:%s\r\n", uid, time.Now().UTC().Format("20060102T150405Z"))
	if e.AllDay {
		fmt.Fprintf(&b, "DTSTART;VALUE=DATE:%s\r\n", e.Start.Format("20060102"))
		if !e.End.IsZero() {
			fmt.Fprintf(&b, "DTEND;VALUE=DATE:%s\r\n", e.End.Format("20060102"))
		}
	} else {
		fmt.Fprintf(&b, "DTSTART:%s\r\n", e.Start.UTC().Format("20060102T150405Z"))
		if !e.End.IsZero() {
			fmt.Fprintf(&b, "DTEND:%s\r\n", e.End.UTC().Format("20060102T150405Z"))
		}
	}
	fmt.Fprintf(&b, "SUMMARY:%s\r\n", esc.Replace(e.Title))
	if e.Location != "" {
		fmt.Fprintf(&b, "LOCATION:%s\r\n", esc.Replace(e.Location))
	}
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	return b.String()
}

// createRequest stores a free-text request and hands it to the agents
// service, which routes it to an agent; poll GET /api/v1/requests/{id}.
func (s *Server) createRequest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<14)).Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_json", err.Error())
		return
	}
	req.Text = strings.TrimSpace(req.Text)
	if req.Text == "" || len(req.Text) > 2000 {
		writeError(w, r, http.StatusBadRequest, "bad_text", "text must be 1..2000 characters")
		return
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := "req_" + hex.EncodeToString(b[:])
	if err := s.db.CreateAgentRequest(r.Context(), id, req.Text); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := bus.Publish(r.Context(), s.bus, bus.MissionsRequested, id, bus.MissionRequest{RequestID: id}); err != nil {
		_ = s.db.UpdateAgentRequest(r.Context(), store.AgentRequest{ID: id, Status: "failed", Error: err.Error()})
		s.fail(w, r, err)
		return
	}
	rq, err := s.db.AgentRequestByID(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, rq)
}

type requestDetail struct {
	store.AgentRequest
	Run      *store.AgentRun `json:"run,omitempty"`
	Missions []mission.Card  `json:"missions"`
}

// getRequest returns a request with its routing, run and the cards made.
func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) {
	rq, err := s.db.AgentRequestByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := requestDetail{AgentRequest: rq, Missions: []mission.Card{}}
	if rq.RunID != "" {
		run, err := s.db.AgentRunByID(r.Context(), rq.RunID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, err)
			return
		}
		if err == nil {
			d.Run = &run
			for _, id := range run.CardIDs {
				c, err := s.db.Mission(r.Context(), id)
				if err == nil {
					d.Missions = append(d.Missions, c)
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// listRuns returns recent agent runs (filter: agent, limit).
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, r, http.StatusBadRequest, "bad_limit", "limit must be 1..500")
			return
		}
		limit = n
	}
	runs, err := s.db.AgentRuns(r.Context(), r.URL.Query().Get("agent"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs, "count": len(runs)})
}

// getRun returns one agent run.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.db.AgentRunByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}
