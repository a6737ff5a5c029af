package gateway

import (
	"net/http"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/ops"
)

// routes is the gateway's route table: one line per endpoint. Each area keeps
// its handlers in its own api_<area>.go file. Authentication wraps the whole
// table (auth.go); which paths are public is decided there.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	app.HealthHandlers(mux, s.health)

	mux.HandleFunc("GET /api/v1/auth/status", s.authStatus)
	mux.HandleFunc("POST /api/v1/auth/setup", s.setup)
	mux.HandleFunc("POST /api/v1/auth/login", s.login)
	mux.HandleFunc("POST /api/v1/auth/logout", s.logout)
	mux.HandleFunc("POST /api/v1/auth/password", s.changePassword)
	mux.HandleFunc("GET /api/v1/tokens", s.listTokens)
	mux.HandleFunc("POST /api/v1/tokens", s.createToken)
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.deleteToken)
	mux.HandleFunc("GET /api/v1/events", s.events)
	mux.HandleFunc("POST /api/v1/imports", s.createImport)
	mux.HandleFunc("GET /api/v1/imports", s.listImports)
	mux.HandleFunc("GET /api/v1/imports/{id}", s.getImport)
	mux.HandleFunc("GET /api/v1/emails", s.listEmails)
	mux.HandleFunc("GET /api/v1/emails/{id}", s.getEmail)
	mux.HandleFunc("GET /api/v1/emails/{id}/html", s.emailHTML)
	mux.HandleFunc("GET /api/v1/emails/{id}/raw", s.emailRaw)
	mux.HandleFunc("GET /api/v1/pipeline", s.pipeline)
	mux.HandleFunc("GET /api/v1/search", s.searchMail)
	mux.Handle("GET /api/v1/ops/status", ops.StatusHandler(s.db, s.bus, s.cfg.StallAfter, s.log))
	mux.Handle("POST /api/v1/ops/reconcile", ops.NewReconciler(s.db, s.bus, ops.ReconcileOptions{Log: s.log}))

	src := s.sourcesAPI()
	mux.HandleFunc("GET /api/v1/sources", src.list)
	mux.HandleFunc("POST /api/v1/sources", src.create)
	mux.HandleFunc("GET /api/v1/sources/{id}", src.get)
	mux.HandleFunc("DELETE /api/v1/sources/{id}", src.remove)
	mux.HandleFunc("POST /api/v1/sources/{id}/sync", src.sync)
	mux.HandleFunc("POST /api/v1/sources/{id}/pause", src.pause)
	mux.HandleFunc("POST /api/v1/sources/{id}/resume", src.resume)
	mux.HandleFunc("POST /api/v1/sources/{id}/credentials", src.credentials)
	mux.HandleFunc("GET /api/v1/oauth/google/start", src.googleStart)
	mux.HandleFunc("GET /api/v1/oauth/google/callback", src.googleCallback)
	mux.HandleFunc("GET /api/v1/oauth/microsoft/start", src.microsoftStart)
	mux.HandleFunc("GET /api/v1/oauth/microsoft/callback", src.microsoftCallback)
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
	mux.HandleFunc("POST /api/v1/pipeline/{stage}/pause", s.pauseStage)
	mux.HandleFunc("POST /api/v1/pipeline/{stage}/resume", s.resumeStage)
	mux.HandleFunc("POST /api/v1/pipeline/{stage}/reprocess", s.reprocessStage)
	mux.HandleFunc("GET /api/v1/deadletters", s.listDeadLetters)
	mux.HandleFunc("POST /api/v1/deadletters/retry", s.retryAllDeadLetters)
	mux.HandleFunc("POST /api/v1/deadletters/{id}/retry", s.retryDeadLetter)
	mux.HandleFunc("GET /api/v1/models", s.listModels)
	mux.HandleFunc("POST /api/v1/models/{name}/download", s.downloadModel)
	mux.HandleFunc("PUT /api/v1/models/embedding", s.setEmbeddingPreference)
	mux.HandleFunc("GET /api/v1/settings", s.getSettings)
	mux.HandleFunc("PUT /api/v1/settings", s.putSettings)
	mux.HandleFunc("GET /api/v1/export", s.export)
	mux.HandleFunc("POST /api/v1/delete-everything", s.deleteEverything)

	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	mux.Handle("/", s.ui())
	return mux
}
