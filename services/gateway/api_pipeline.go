package gateway

import (
	"net/http"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// stageView is one stage in GET /api/v1/pipeline.
type stageView struct {
	store.StageCount
	QueueDepth  uint64 `json:"queue_depth"`  // messages waiting in the stage's consumer
	InFlight    int    `json:"in_flight"`    // handed to a worker, not yet acknowledged
	DeadLetters int    `json:"dead_letters"` // unresolved dead letters of the stage
}

// pipeline answers GET /api/v1/pipeline with per-stage counts.
func (s *Server) pipeline(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	counts, err := s.db.PipelineCounts(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	dls, err := s.db.ListDeadLetters(ctx, "", 1000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	perStage := map[string]int{}
	for _, d := range dls {
		perStage[d.Stage]++
	}
	stages := make([]stageView, 0, len(counts))
	for i, st := range bus.Stages() {
		v := stageView{StageCount: counts[i], DeadLetters: perStage[st.Name]}
		if st.Consumer != "" {
			pending, inflight, err := s.bus.ConsumerLag(ctx, bus.StreamEmails, st.Consumer)
			if err == nil {
				v.QueueDepth, v.InFlight = pending, inflight
			}
		} else {
			v.DeadLetters = perStage[bus.ConsumerIngestImports]
		}
		stages = append(stages, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"stages": stages})
}
