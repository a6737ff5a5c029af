package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/microcosm-cc/bluemonday"

	"github.com/ownyou/home/pkg/store"
)

// listEmails answers GET /api/v1/emails?limit=&cursor=: newest first, with
// next_cursor when there are more. With q= (words in subject, sender or
// snippet) or from= (sender address) it returns the newest limit matches.
func (s *Server) listEmails(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, r, http.StatusBadRequest, "bad_limit", "limit must be a number from 1 to 500")
			return
		}
		limit = n
	}
	q, from := strings.TrimSpace(r.URL.Query().Get("q")), strings.TrimSpace(r.URL.Query().Get("from"))
	if q != "" || from != "" {
		s.filterEmails(w, r, q, from, limit)
		return
	}
	page, err := s.db.ListEmails(r.Context(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) filterEmails(w http.ResponseWriter, r *http.Request, q, from string, limit int) {
	rows, err := s.db.Pool.Query(r.Context(), `
		SELECT id, subject, from_addr, from_name, sent_at, snippet, ingested_at FROM emails
		WHERE ($1 = '' OR subject ILIKE '%'||$1||'%' OR from_addr ILIKE '%'||$1||'%' OR from_name ILIKE '%'||$1||'%' OR snippet ILIKE '%'||$1||'%')
		  AND ($2 = '' OR from_addr ILIKE $2)
		ORDER BY sort_at DESC, id DESC LIMIT $3`, likeEscape(q), likeEscape(from), limit)
	if err != nil {
		s.fail(w, r, fmt.Errorf("filter emails: %w", err))
		return
	}
	defer rows.Close()
	page := store.EmailPage{Emails: []store.Email{}}
	for rows.Next() {
		var e store.Email
		if err := rows.Scan(&e.ID, &e.Subject, &e.FromAddr, &e.FromName, &e.SentAt, &e.Snippet, &e.IngestedAt); err != nil {
			s.fail(w, r, fmt.Errorf("filter emails: %w", err))
			return
		}
		e.To, e.Cc, e.Labels, e.Warnings, e.Attachments = []string{}, []string{}, []string{}, []string{}, []store.Attachment{}
		page.Emails = append(page.Emails, e)
	}
	if err := rows.Err(); err != nil {
		s.fail(w, r, fmt.Errorf("filter emails: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// classification is one category of an email, with its provenance.
type classification struct {
	Taxonomy   string    `json:"taxonomy"`
	CategoryID string    `json:"category_id"`
	Confidence float32   `json:"confidence"`
	Evidence   string    `json:"evidence"`
	Judgement  string    `json:"judgement"`
	Backend    string    `json:"backend"`
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
}

type stageStatus struct {
	Stage  string `json:"stage"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

type emailDetail struct {
	store.Email
	Classifications []classification `json:"classifications"`
	Stages          []stageStatus    `json:"stages"`
}

// getEmail answers GET /api/v1/emails/{id}: the email with its bodies (the
// HTML unsanitized: render it only through /html), its categories with
// evidence, and its progress through the stages.
func (s *Server) getEmail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	e, err := s.db.GetEmail(ctx, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := emailDetail{Email: e, Classifications: []classification{}, Stages: []stageStatus{}}
	rows, err := s.db.Pool.Query(ctx, `SELECT taxonomy, category_id, confidence, evidence, judgement, backend, model, created_at
		FROM classifications WHERE email_id = $1 ORDER BY confidence DESC`, e.ID)
	if err != nil {
		s.fail(w, r, fmt.Errorf("email classifications: %w", err))
		return
	}
	for rows.Next() {
		var c classification
		if err := rows.Scan(&c.Taxonomy, &c.CategoryID, &c.Confidence, &c.Evidence, &c.Judgement, &c.Backend, &c.Model, &c.CreatedAt); err != nil {
			rows.Close()
			s.fail(w, r, fmt.Errorf("email classifications: %w", err))
			return
		}
		d.Classifications = append(d.Classifications, c)
	}
	rows.Close()
	rows, err = s.db.Pool.Query(ctx, `SELECT stage, status, error FROM email_stages WHERE email_id = $1 ORDER BY stage`, e.ID)
	if err != nil {
		s.fail(w, r, fmt.Errorf("email stages: %w", err))
		return
	}
	for rows.Next() {
		var st stageStatus
		if err := rows.Scan(&st.Stage, &st.Status, &st.Error); err != nil {
			rows.Close()
			s.fail(w, r, fmt.Errorf("email stages: %w", err))
			return
		}
		d.Stages = append(d.Stages, st)
	}
	rows.Close()
	writeJSON(w, http.StatusOK, d)
}

// mailPolicy is what survives of an email's HTML: formatting, links and images,
// never scripts, event handlers, forms, frames or javascript: URLs.
func mailPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowStyling()
	p.AllowAttrs("style").Globally()
	p.AllowElements("center", "font")
	p.AllowAttrs("color", "face", "size").OnElements("font")
	p.AllowAttrs("bgcolor", "align", "valign", "width", "height", "border", "cellpadding", "cellspacing").Globally()
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
}

// emailCSP forbids scripts everywhere; remote images load only when asked for.
func emailCSP(images bool) string {
	img := "img-src data: cid:"
	if images {
		img = "img-src data: cid: https: http:"
	}
	return "default-src 'none'; style-src 'unsafe-inline'; " + img + "; script-src 'none'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
}

// emailHTML answers GET /api/v1/emails/{id}/html?images=1: the email's body as
// a standalone HTML document sanitized with bluemonday, served with a CSP that
// allows no script and, unless images=1, no remote images. The UI shows it in
// a sandboxed iframe; a plain-text email is escaped into a <pre>.
func (s *Server) emailHTML(w http.ResponseWriter, r *http.Request) {
	e, err := s.db.GetEmail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	images := r.URL.Query().Get("images") == "1"
	var body string
	if strings.TrimSpace(e.BodyHTML) != "" {
		body = s.policy.Sanitize(e.BodyHTML)
	} else {
		body = `<pre style="white-space:pre-wrap;font:inherit">` + bluemonday.StrictPolicy().Sanitize(e.BodyText) + `</pre>`
	}
	csp := emailCSP(images)
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="%s"><base target="_blank">`+
		`<style>body{font-family:system-ui,sans-serif;font-size:15px;line-height:1.45;margin:12px;color:#1d2433;word-wrap:break-word}img{max-width:100%%;height:auto}table{max-width:100%%}</style></head><body>%s</body></html>`,
		csp, body)
}

// emailRaw answers GET /api/v1/emails/{id}/raw: the original message as
// message/rfc822, as a download.
func (s *Server) emailRaw(w http.ResponseWriter, r *http.Request) {
	raw, err := s.db.RawEmail(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Disposition", `attachment; filename="`+r.PathValue("id")+`.eml"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(raw)
}
