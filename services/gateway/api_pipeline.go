package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/pkg/store"
)

// stageView is one stage in GET /api/v1/pipeline.
type stageView struct {
	store.StageCount
	QueueDepth     uint64 `json:"queue_depth"`     // messages waiting in the stage's consumer
	InFlight       int    `json:"in_flight"`       // handed to a worker, not yet acknowledged
	DeadLetters    int    `json:"dead_letters"`    // unresolved dead letters of the stage
	WorkersWaiting int    `json:"workers_waiting"` // open pull requests: workers alive and idle or asking for more
	Paused         bool   `json:"paused"`          // the stage's consumer is paused
	Controllable   bool   `json:"controllable"`    // pause/resume/reprocess apply to this stage
	// Workers are the live worker processes of the stage's service, from
	// their heartbeats; nil (absent) when the heartbeats could not be read.
	Workers     []ops.Beat `json:"workers,omitempty"`
	Stalled     bool       `json:"stalled"`                // the stage looks stuck (see StallReason)
	StallReason string     `json:"stall_reason,omitempty"` // why, in words the user can act on
	// State says honestly what the stage is doing: up_to_date, working,
	// paused, stalled (messages wait, no worker takes them) or blocked
	// (it cannot run until something is fixed); Detail says it in words and
	// Action, when set, is the fix the user can start.
	State  string       `json:"state"`
	Detail string       `json:"detail"`
	Action *stageAction `json:"action,omitempty"`
	// Notes are things the user should know that do not stop the stage
	// (the lite embedding model stands in, the LLM is unreachable).
	Notes []stageNote `json:"notes,omitempty"`
	// Reembed is a switch of embedding model in progress (embedder only).
	Reembed *reembedView `json:"reembed,omitempty"`
}

// stageAction is a fix the user can start: a screen of the UI (Href) or an
// API call (Method and Path).
type stageAction struct {
	Label  string `json:"label"`
	Href   string `json:"href,omitempty"`
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
}

// stageNote is something worth knowing about a stage, with an optional fix.
type stageNote struct {
	Text   string       `json:"text"`
	Action *stageAction `json:"action,omitempty"`
}

// reembedView is all mail being re-embedded into another model: search uses
// From until Done reaches Total, then To.
type reembedView struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

type pipelineResponse struct {
	Stages         []stageView        `json:"stages"`
	StalledSources []ops.SourceStatus `json:"stalled_sources"`     // syncing sources that stopped reporting progress
	OpsError       string             `json:"ops_error,omitempty"` // why workers and stalls are unknown, when they are
	At             time.Time          `json:"at"`
}

// pipeline answers GET /api/v1/pipeline with per-stage counts.
func (s *Server) pipeline(w http.ResponseWriter, r *http.Request) {
	v, err := s.pipelineView(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) pipelineView(ctx context.Context) (pipelineResponse, error) {
	counts, err := s.db.PipelineCounts(ctx)
	if err != nil {
		return pipelineResponse{}, err
	}
	dls, err := s.db.ListDeadLetters(ctx, "", 1000)
	if err != nil {
		return pipelineResponse{}, err
	}
	perStage := map[string]int{}
	for _, d := range dls {
		perStage[d.Stage]++
	}
	stages := make([]stageView, 0, len(counts))
	for i, st := range bus.Stages() {
		v := stageView{StageCount: counts[i], DeadLetters: perStage[st.Name]}
		if st.Consumer != "" {
			v.Controllable = true
			if c, err := s.bus.JetStream().Consumer(ctx, bus.StreamEmails, st.Consumer); err == nil {
				if info, err := c.Info(ctx); err == nil {
					v.QueueDepth, v.InFlight = info.NumPending, info.NumAckPending
					v.WorkersWaiting, v.Paused = info.NumWaiting, info.Paused
				}
			}
		} else {
			v.DeadLetters = perStage[bus.ConsumerIngestImports]
		}
		stages = append(stages, v)
	}
	resp := pipelineResponse{Stages: stages, StalledSources: []ops.SourceStatus{}, At: time.Now().UTC()}
	s.addOpsStatus(ctx, &resp)
	if err := s.addStates(ctx, &resp); err != nil {
		return pipelineResponse{}, err
	}
	return resp, nil
}

// modelsAction opens Settings → Models, where MiniLM is downloaded.
var modelsAction = &stageAction{Label: "Open Settings → Models", Href: "#/settings/models"}

// addStates sets every stage's honest state, detail, fix and notes.
func (s *Server) addStates(ctx context.Context, v *pipelineResponse) error {
	emb, err := s.db.GetEmbeddingState(ctx)
	if err != nil {
		return err
	}
	cls, err := s.db.GetClassifierStatus(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for i := range v.Stages {
		sv := &v.Stages[i]
		waiting := sv.Total - sv.Processed - sv.Failed
		if sv.Name == "ingest" {
			waiting = sv.Pending
		}
		switch {
		case sv.Name == "embedder" && emb.Blocked != "":
			sv.State, sv.Detail, sv.Action = "blocked", fmt.Sprintf("Blocked: %s %d emails wait here; nothing is lost.", emb.Blocked, max(waiting, 0)), modelsAction
		case sv.Paused:
			sv.State, sv.Detail = "paused", fmt.Sprintf("Paused: %d emails wait until you resume this stage.", max(waiting, 0))
			sv.Action = &stageAction{Label: "Resume", Method: http.MethodPost, Path: "/api/v1/pipeline/" + sv.Name + "/resume"}
		case sv.Stalled:
			sv.State, sv.Detail = "stalled", "Stalled: "+sv.StallReason+"."
			if len(sv.Workers) == 0 && sv.Workers != nil {
				sv.Detail += " Start the " + sv.Name + " service (docker compose ps / docker compose logs " + sv.Name + ")."
			}
		case waiting > 0:
			sv.State, sv.Detail = "working", fmt.Sprintf("Working: %d of %d emails done, %d to go.", sv.Processed, sv.Total, waiting)
			if sv.Name == "ingest" {
				sv.Detail = fmt.Sprintf("Working: %d imports or syncs queued.", waiting)
			}
		default:
			sv.State, sv.Detail = "up_to_date", "Up to date."
		}
		if sv.Failed > 0 && sv.Name != "ingest" {
			sv.Notes = append(sv.Notes, stageNote{Text: fmt.Sprintf("%d emails failed here; their reasons are under Dead letters.", sv.Failed),
				Action: &stageAction{Label: "Retry them", Method: http.MethodPost, Path: "/api/v1/deadletters/retry"}})
		}
		switch sv.Name {
		case "embedder":
			if emb.Reason != "" && emb.Blocked == "" {
				sv.Notes = append(sv.Notes, stageNote{Text: emb.Reason, Action: modelsAction})
			}
			if emb.TargetModel != "" {
				done, total, err := s.db.EmbeddingCoverage(ctx, emb.TargetModel)
				if err != nil {
					return err
				}
				sv.Reembed = &reembedView{From: emb.ActiveModel, To: emb.TargetModel, Done: min(done, total), Total: total}
				sv.Notes = append(sv.Notes, stageNote{Text: fmt.Sprintf("Re-embedding all mail for %s: %d of %d. Search uses %s until it is done.",
					modelName(emb.TargetModel), min(done, total), total, modelName(emb.ActiveModel))})
			}
		case "classifier":
			if cls.Message != "" {
				sv.Notes = append(sv.Notes, stageNote{Text: cls.Message, Action: &stageAction{Label: "Open Settings", Href: "#/settings"}})
			}
		}
	}
	return nil
}

// modelName is an embedding model id in words.
func modelName(id string) string {
	switch {
	case strings.HasPrefix(id, "all-minilm-l6-v2-int8"):
		return "MiniLM (int8)"
	case strings.HasPrefix(id, "all-minilm-l6-v2"):
		return "MiniLM"
	case strings.HasPrefix(id, "wink-embeddings"):
		return "the lite model"
	case id == "":
		return "no model"
	default:
		return id
	}
}

// addOpsStatus adds the workers alive and the stall flags of the ops snapshot
// to the view. Without heartbeats the counts are still worth showing, so a
// failed snapshot is reported in OpsError rather than failing the view.
func (s *Server) addOpsStatus(ctx context.Context, v *pipelineResponse) {
	st, err := ops.Snapshot(ctx, s.db, s.bus, s.cfg.StallAfter, time.Now())
	if err != nil {
		s.log.WarnContext(ctx, "pipeline: ops status", "err", err)
		v.OpsError = "worker heartbeats unavailable: " + err.Error()
		return
	}
	byStage := map[string]ops.StageStatus{}
	for _, ss := range st.Stages {
		byStage[ss.Stage] = ss
	}
	for i := range v.Stages {
		sv := &v.Stages[i]
		if ss, ok := byStage[sv.Name]; ok {
			sv.Workers, sv.Stalled, sv.StallReason = ss.Workers, ss.Stalled, ss.Reason
			continue
		}
		sv.Workers = []ops.Beat{} // a stage without a consumer (ingest): its service's workers
		for _, w := range st.Workers {
			if w.Service == sv.Name {
				sv.Workers = append(sv.Workers, w)
			}
		}
		if n := len(st.StalledSources); n > 0 {
			sv.Stalled, sv.StallReason = true, fmt.Sprintf("%d mail source(s) syncing without progress", n)
		}
	}
	v.StalledSources = st.StalledSources
}

// consumerOf returns the durable consumer of a controllable stage.
func consumerOf(stage string) (string, bool) {
	for _, st := range bus.Stages() {
		if st.Name == stage && st.Consumer != "" {
			return st.Consumer, true
		}
	}
	return "", false
}

// pauseStage answers POST /api/v1/pipeline/{stage}/pause: the stage's
// JetStream consumer stops handing out messages (to every replica) until resumed.
func (s *Server) pauseStage(w http.ResponseWriter, r *http.Request) {
	s.setPaused(w, r, true)
}

// resumeStage answers POST /api/v1/pipeline/{stage}/resume.
func (s *Server) resumeStage(w http.ResponseWriter, r *http.Request) {
	s.setPaused(w, r, false)
}

func (s *Server) setPaused(w http.ResponseWriter, r *http.Request, pause bool) {
	stage := r.PathValue("stage")
	cons, ok := consumerOf(stage)
	if !ok {
		writeError(w, r, http.StatusNotFound, "no_such_stage", "no stage "+strconv.Quote(stage)+" can be paused (embedder, classifier, agents can)")
		return
	}
	var err error
	if pause {
		_, err = s.bus.JetStream().PauseConsumer(r.Context(), bus.StreamEmails, cons, time.Now().AddDate(100, 0, 0))
	} else {
		_, err = s.bus.JetStream().ResumeConsumer(r.Context(), bus.StreamEmails, cons)
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		writeError(w, r, http.StatusConflict, "stage_not_running", "the "+stage+" stage has not started yet; start its service first")
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("pause %s: %w", stage, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stage": stage, "paused": pause})
}

// reprocessStage answers POST /api/v1/pipeline/{stage}/reprocess?mode=missing|all:
// it re-publishes the stage's input message for every email the stage has not
// finished (missing, the default) or for every email (all). A stage treats a
// message for an email it has marked done as a redelivery and skips the work,
// so "all" first clears the stage's marks of each batch: the stage then runs
// again for real, and counts the emails as it finishes them. Handlers are
// idempotent (they replace what they store), so reprocessing is always safe;
// an email whose re-publish fails stays unmarked for "missing" and the
// reconcile job.
func (s *Server) reprocessStage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	stage := r.PathValue("stage")
	if _, ok := consumerOf(stage); !ok {
		writeError(w, r, http.StatusNotFound, "no_such_stage", "no stage "+strconv.Quote(stage)+" can be reprocessed (embedder, classifier, agents can)")
		return
	}
	mode := r.URL.Query().Get("mode")
	if mode == "" {
		mode = "missing"
	}
	if mode != "missing" && mode != "all" {
		writeError(w, r, http.StatusBadRequest, "bad_mode", "mode must be missing or all")
		return
	}
	nonce := "re" + strconv.FormatInt(time.Now().UnixNano(), 36)
	q := `SELECT e.id FROM emails e WHERE e.id > $1 AND ($2 OR NOT EXISTS
		(SELECT 1 FROM email_stages s WHERE s.email_id = e.id AND s.stage = $3 AND s.status = 'done')) ORDER BY e.id LIMIT 1000`
	after, sent := "", 0
	for {
		rows, err := s.db.Pool.Query(ctx, q, after, mode == "all", stage)
		if err != nil {
			s.fail(w, r, fmt.Errorf("reprocess %s: %w", stage, err))
			return
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				s.fail(w, r, fmt.Errorf("reprocess %s: %w", stage, err))
				return
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			s.fail(w, r, fmt.Errorf("reprocess %s: %w", stage, err))
			return
		}
		if mode == "all" && len(ids) > 0 {
			if _, err := s.db.Pool.Exec(ctx, `DELETE FROM email_stages WHERE stage = $1 AND email_id = ANY($2)`, stage, ids); err != nil {
				s.fail(w, r, fmt.Errorf("reprocess %s: clear stage marks: %w", stage, err))
				return
			}
		}
		for _, id := range ids {
			if err := s.resendInput(ctx, stage, id, nonce); err != nil {
				s.fail(w, r, fmt.Errorf("reprocess %s after %d: %w", stage, sent, err))
				return
			}
			sent++
		}
		if len(ids) < 1000 {
			break
		}
		after = ids[len(ids)-1]
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"stage": stage, "mode": mode, "queued": sent})
}

func (s *Server) resendInput(ctx context.Context, stage, emailID, nonce string) error {
	switch stage {
	case bus.ConsumerEmbedder:
		return bus.Resend(ctx, s.bus, bus.EmailsIngested, emailID, nonce, bus.EmailIngested{EmailID: emailID})
	case bus.ConsumerClassifier:
		return bus.Resend(ctx, s.bus, bus.EmailsEmbedded, emailID, nonce, bus.EmailEmbedded{EmailID: emailID})
	case bus.ConsumerAgents:
		return bus.Resend(ctx, s.bus, bus.EmailsClassified, emailID, nonce, bus.EmailClassified{EmailID: emailID})
	}
	return fmt.Errorf("stage %s has no input topic", stage)
}

// listDeadLetters answers GET /api/v1/deadletters?stage=&limit=: unresolved, newest first.
func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	dls, err := s.db.ListDeadLetters(r.Context(), r.URL.Query().Get("stage"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": dls})
}

// retryDeadLetter answers POST /api/v1/deadletters/{id}/retry: re-publishes the
// stored message on its subject and marks the dead letter resolved. If the
// message fails again, the stage records it again.
func (s *Server) retryDeadLetter(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_id", "dead letter ids are numbers")
		return
	}
	d, err := s.db.GetDeadLetter(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.retry(r.Context(), d); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"retried": 1})
}

// retryAllDeadLetters answers POST /api/v1/deadletters/retry?stage=: retries
// every unresolved dead letter (of the stage, if given).
func (s *Server) retryAllDeadLetters(w http.ResponseWriter, r *http.Request) {
	n := 0
	for {
		dls, err := s.db.ListDeadLetters(r.Context(), r.URL.Query().Get("stage"), 1000)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, d := range dls {
			if err := s.retry(r.Context(), d); err != nil {
				s.fail(w, r, fmt.Errorf("retry after %d: %w", n, err))
				return
			}
			n++
		}
		if len(dls) < 1000 {
			break
		}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"retried": n})
}

func (s *Server) retry(ctx context.Context, d store.DeadLetter) error {
	// Resolve first: a retry that fails again reopens the row itself, which a
	// resolve written after the publish could overwrite.
	if err := s.db.ResolveDeadLetter(ctx, d.ID); err != nil {
		return err
	}
	msgID := d.MsgID + ":retry" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := bus.Republish(ctx, s.bus, d.Subject, msgID, d.Payload); err != nil {
		if rerr := s.db.ReopenDeadLetter(context.WithoutCancel(ctx), d.ID); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("retry dead letter %d: %w", d.ID, err)
	}
	return nil
}
