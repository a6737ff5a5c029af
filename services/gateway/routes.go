package gateway

import (
	"net/http"

	"github.com/ownyou/home/pkg/app"
)

// routes is the gateway's route table: one line per endpoint. Each area keeps
// its handlers in its own api_<area>.go file.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	app.HealthHandlers(mux, s.health)

	mux.HandleFunc("POST /api/v1/imports", s.createImport)
	mux.HandleFunc("GET /api/v1/imports/{id}", s.getImport)
	mux.HandleFunc("GET /api/v1/emails", s.listEmails)
	mux.HandleFunc("GET /api/v1/emails/{id}", s.getEmail)
	mux.HandleFunc("GET /api/v1/pipeline", s.pipeline)
	mux.HandleFunc("GET /api/v1/search", s.searchMail)

	src := s.sourcesAPI()
	mux.HandleFunc("GET /api/v1/sources", src.list)
	mux.HandleFunc("POST /api/v1/sources", src.create)
	mux.HandleFunc("GET /api/v1/sources/{id}", src.get)
	mux.HandleFunc("DELETE /api/v1/sources/{id}", src.remove)
	mux.HandleFunc("POST /api/v1/sources/{id}/sync", src.sync)
	mux.HandleFunc("POST /api/v1/sources/{id}/pause", src.pause)
	mux.HandleFunc("POST /api/v1/sources/{id}/resume", src.resume)
	mux.HandleFunc("GET /api/v1/oauth/google/start", src.googleStart)
	mux.HandleFunc("GET /api/v1/oauth/google/callback", src.googleCallback)
	mux.HandleFunc("GET /api/v1/profile", s.getProfile)
	mux.HandleFunc("POST /api/v1/profile/{taxonomy}/{id}/dispute", s.disputeCategory)
	mux.HandleFunc("GET /api/v1/missions", s.listMissions)
	mux.HandleFunc("GET /api/v1/missions/{id}", s.getMission)
	mux.HandleFunc("POST /api/v1/missions/{id}/feedback", s.missionFeedback)
	mux.HandleFunc("POST /api/v1/missions/{id}/actions", s.missionAction)
	mux.HandleFunc("POST /api/v1/requests", s.createRequest)
	mux.HandleFunc("GET /api/v1/requests/{id}", s.getRequest)
	mux.HandleFunc("GET /api/v1/runs", s.listRuns)
	mux.HandleFunc("GET /api/v1/runs/{id}", s.getRun)

	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}
