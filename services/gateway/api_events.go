package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
)

// events answers GET /api/v1/events with a Server-Sent Events stream:
// "mission" events (the payload of every missions.> message, as it is
// published) and "pipeline" events (per-stage counts, sent when they change,
// checked every OWNYOU_EVENTS_INTERVAL). A ": ping" comment keeps idle
// connections open through proxies.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	msgs := make(chan *nats.Msg, 256)
	sub, err := s.bus.Conn().ChanSubscribe("missions.>", msgs)
	if err != nil {
		s.fail(w, r, fmt.Errorf("subscribe missions: %w", err))
		return
	}
	defer func() { _ = sub.Unsubscribe() }()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 3000\n\n")
	_ = rc.Flush()

	tick := time.NewTicker(s.cfg.EventsInterval)
	defer tick.Stop()
	ping := time.NewTicker(25 * time.Second)
	defer ping.Stop()
	var last []byte
	sendPipeline := func() error {
		v, err := s.pipelineView(ctx)
		if err != nil {
			return nil // a failed snapshot is retried at the next tick
		}
		b, _ := json.Marshal(v)
		if bytes.Equal(b, last) {
			return nil
		}
		last = b
		return writeEvent(w, rc, "pipeline", b)
	}
	if err := sendPipeline(); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopping:
			return
		case m := <-msgs:
			var env struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			}
			data := m.Data
			if json.Unmarshal(m.Data, &env) == nil && len(env.Data) > 0 {
				data, _ = json.Marshal(map[string]any{"subject": m.Subject, "mission": env.Data})
			}
			if err := writeEvent(w, rc, "mission", data); err != nil {
				return
			}
		case <-tick.C:
			if err := sendPipeline(); err != nil {
				return
			}
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, rc *http.ResponseController, name string, data []byte) error {
	if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, bytes.ReplaceAll(data, []byte("\n"), []byte(" "))); err != nil {
		return err
	}
	return rc.Flush()
}
