package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
)

// Settings are the user's choices edited on the Settings screen. The LLM API
// key is not kept here: it is configuration (OWNYOU_LLM_API_KEY).
type Settings struct {
	LLMEndpoint      string  `json:"llm_endpoint"`       // OpenAI-compatible base URL; empty = local only
	LLMModel         string  `json:"llm_model"`          // model name at that endpoint
	LLMMonthlyBudget float64 `json:"llm_monthly_budget"` // USD per month; 0 = no cloud spending
	RemoteImages     bool    `json:"remote_images"`      // load remote images in mail by default
	CloudLLMAllowed  bool    `json:"cloud_llm_allowed"`  // mail text may be sent to the LLM endpoint
}

func (s *Server) loadSettings(ctx context.Context) (Settings, error) {
	var st Settings
	var raw []byte
	err := s.db.Pool.QueryRow(ctx, `SELECT value FROM settings WHERE key = 'user'`).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("load settings: %w", err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("load settings: %w", err)
	}
	return st, nil
}

// getSettings answers GET /api/v1/settings.
func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	st, err := s.loadSettings(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// putSettings answers PUT /api/v1/settings with the whole settings document.
func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) {
	var st Settings
	if err := decodeBody(r, &st); err != nil {
		s.fail(w, r, err)
		return
	}
	st.LLMEndpoint = strings.TrimSpace(st.LLMEndpoint)
	if st.LLMEndpoint != "" && !strings.HasPrefix(st.LLMEndpoint, "http://") && !strings.HasPrefix(st.LLMEndpoint, "https://") {
		writeError(w, r, http.StatusBadRequest, "bad_endpoint", "the LLM endpoint must be an http:// or https:// URL")
		return
	}
	if st.LLMMonthlyBudget < 0 {
		writeError(w, r, http.StatusBadRequest, "bad_budget", "the budget cannot be negative")
		return
	}
	b, _ := json.Marshal(st)
	if _, err := s.db.Pool.Exec(r.Context(), `INSERT INTO settings (key, value) VALUES ('user', $1)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`, b); err != nil {
		s.fail(w, r, fmt.Errorf("save settings: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// exportTables are the user's data in an export, with each table's order.
var exportTables = []struct{ name, order string }{
	{"sources", "id"}, {"imports", "created_at"}, {"profile", "taxonomy, category_id"},
	{"classifications", "email_id, taxonomy, category_id"}, {"missions", "created_at"}, {"feedback", "id"}, {"settings", "key"},
}

// export answers GET /api/v1/export?format=json|mbox. json streams one
// document with every table of the user's data (emails without their raw
// bytes; secrets of sources left out); mbox streams every kept original message.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("format") {
	case "", "json":
		s.exportJSON(w, r)
	case "mbox":
		s.exportMbox(w, r)
	default:
		writeError(w, r, http.StatusBadRequest, "bad_format", "format must be json or mbox")
	}
}

func (s *Server) exportJSON(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="ownyou-export-`+time.Now().UTC().Format("20060102")+`.json"`)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	fmt.Fprintf(bw, `{"exported_at":%q`, time.Now().UTC().Format(time.RFC3339))
	write := func(name, sql string) error {
		fmt.Fprintf(bw, ",\n%q:[", name)
		rows, err := s.db.Pool.Query(ctx, sql)
		if err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
		defer rows.Close()
		first := true
		for rows.Next() {
			var doc []byte
			if err := rows.Scan(&doc); err != nil {
				return fmt.Errorf("export %s: %w", name, err)
			}
			if !first {
				bw.WriteString(",")
			}
			first = false
			bw.WriteString("\n")
			bw.Write(doc)
		}
		bw.WriteString("]")
		return rows.Err()
	}
	if err := write("emails", `SELECT to_jsonb(e) - 'raw_zstd' FROM emails e ORDER BY sort_at, id`); err != nil {
		s.log.ErrorContext(ctx, "export failed", "err", err)
		return // headers are out; the truncated document shows the failure
	}
	for _, t := range exportTables {
		if err := write(t.name, `SELECT to_jsonb(x) - 'secret' FROM `+t.name+` x ORDER BY `+t.order); err != nil {
			s.log.ErrorContext(ctx, "export failed", "err", err)
			return
		}
	}
	bw.WriteString("}\n")
}

func (s *Server) exportMbox(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Content-Type", "application/mbox")
	w.Header().Set("Content-Disposition", `attachment; filename="ownyou-export-`+time.Now().UTC().Format("20060102")+`.mbox"`)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer bw.Flush()
	rows, err := s.db.Pool.Query(ctx, `SELECT from_addr, sort_at, raw_zstd FROM emails WHERE raw_zstd IS NOT NULL ORDER BY sort_at, id`)
	if err != nil {
		s.fail(w, r, fmt.Errorf("export mbox: %w", err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var from string
		var at time.Time
		var z []byte
		if err := rows.Scan(&from, &at, &z); err != nil {
			s.log.ErrorContext(ctx, "export mbox failed", "err", err)
			return
		}
		raw, err := s.db.Decompress(z)
		if err != nil {
			s.log.ErrorContext(ctx, "export mbox: skip unreadable message", "err", err)
			continue
		}
		if from == "" {
			from = "MAILER-DAEMON"
		}
		writeMboxMessage(bw, from, at, raw)
	}
	if err := rows.Err(); err != nil {
		s.log.ErrorContext(ctx, "export mbox failed", "err", err)
	}
}

// writeMboxMessage writes one message in mboxrd form: a From_ line, the
// message with ">"-quoted From_ lines, and a blank line.
func writeMboxMessage(bw *bufio.Writer, from string, at time.Time, raw []byte) {
	fmt.Fprintf(bw, "From %s %s\n", strings.ReplaceAll(from, " ", "_"), at.UTC().Format("Mon Jan _2 15:04:05 2006"))
	text := strings.ReplaceAll(string(raw), "\r\n", "\n")
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
			bw.WriteString(">")
		}
		bw.WriteString(line)
		bw.WriteString("\n")
	}
	bw.WriteString("\n")
}

// deleteEverything answers POST /api/v1/delete-everything {"confirm":"DELETE"}:
// removes all mail, derived data, sources and imports, and purges the pending
// messages of the pipeline streams. The admin account, API tokens and
// settings stay so the household can still sign in.
func (s *Server) deleteEverything(w http.ResponseWriter, r *http.Request) {
	var b struct{ Confirm string }
	if err := decodeBody(r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if b.Confirm != "DELETE" {
		writeError(w, r, http.StatusBadRequest, "confirm", `send {"confirm":"DELETE"} to delete everything`)
		return
	}
	ctx := r.Context()
	for _, st := range []string{bus.StreamEmails, bus.StreamMissions, bus.StreamImports} {
		stream, err := s.bus.JetStream().Stream(ctx, st)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err == nil {
			err = stream.Purge(ctx)
		}
		if err != nil {
			s.fail(w, r, fmt.Errorf("purge %s: %w", st, err))
			return
		}
	}
	if _, err := s.db.Pool.Exec(ctx, `TRUNCATE feedback, missions, profile, classifications, embeddings, email_stages,
		emails, import_errors, imports, sources, dead_letters CASCADE`); err != nil {
		s.fail(w, r, fmt.Errorf("delete everything: %w", err))
		return
	}
	s.log.WarnContext(ctx, "all user data deleted on request")
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true})
}
