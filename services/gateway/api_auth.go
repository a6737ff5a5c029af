package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// errBadInput marks a request the client must fix (400).
var errBadInput = errors.New("bad input")

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", errBadInput, err)
	}
	return nil
}

// authStatus answers GET /api/v1/auth/status: whether setup is needed, whether
// the caller is signed in, and its CSRF token when it is.
func (s *Server) authStatus(w http.ResponseWriter, r *http.Request) {
	set, err := s.adminSet(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := map[string]any{"setup_needed": !set, "authenticated": false}
	if p, err := s.authenticate(r); err == nil {
		out["authenticated"] = true
		out["method"] = p.kind
		if p.csrf != "" {
			out["csrf_token"] = p.csrf
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type passwordBody struct {
	Password string `json:"password"`
}

// setup answers POST /api/v1/auth/setup: creates the admin password once and
// signs the caller in.
func (s *Server) setup(w http.ResponseWriter, r *http.Request) {
	var b passwordBody
	if err := decodeBody(r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.setAdminPassword(r.Context(), b.Password, true); err != nil {
		s.fail(w, r, err)
		return
	}
	csrf, err := s.newSession(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"authenticated": true, "csrf_token": csrf})
}

// login answers POST /api/v1/auth/login: rate-limited per client address.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.limiter.allow(r) {
		w.Header().Set("Retry-After", "60")
		writeError(w, r, http.StatusTooManyRequests, "rate_limited", "too many sign-in attempts; wait a minute")
		return
	}
	var b passwordBody
	if err := decodeBody(r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPassword(r.Context(), b.Password); err != nil {
		s.fail(w, r, err)
		return
	}
	csrf, err := s.newSession(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"authenticated": true, "csrf_token": csrf})
}

// logout answers POST /api/v1/auth/logout: ends the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, err := s.db.Pool.Exec(r.Context(), `DELETE FROM auth_sessions WHERE token_hash = $1`, hashToken(c.Value)); err != nil {
			s.fail(w, r, fmt.Errorf("logout: %w", err))
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isTLS(r)})
	w.WriteHeader(http.StatusNoContent)
}

// changePassword answers POST /api/v1/auth/password {current, password}.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	var b struct{ Current, Password string }
	if err := decodeBody(r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPassword(r.Context(), b.Current); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.setAdminPassword(r.Context(), b.Password, false); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type apiToken struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at,omitempty"`
	Token      string  `json:"token,omitempty"` // only in the create response
}

// createToken answers POST /api/v1/tokens {name}: the token is shown once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var b struct{ Name string }
	if err := decodeBody(r, &b); err != nil {
		s.fail(w, r, err)
		return
	}
	t := apiToken{ID: newID("tok"), Name: strings.TrimSpace(b.Name), Token: "oy_" + randomToken()}
	if err := s.db.Pool.QueryRow(r.Context(), `INSERT INTO api_tokens (id, name, token_hash) VALUES ($1, $2, $3) RETURNING to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SSOF')`,
		t.ID, t.Name, hashToken(t.Token)).Scan(&t.CreatedAt); err != nil {
		s.fail(w, r, fmt.Errorf("create token: %w", err))
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

// listTokens answers GET /api/v1/tokens (never the secrets).
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.Pool.Query(r.Context(), `SELECT id, name, to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SSOF'),
		to_char(last_used_at, 'YYYY-MM-DD"T"HH24:MI:SSOF') FROM api_tokens ORDER BY created_at`)
	if err != nil {
		s.fail(w, r, fmt.Errorf("list tokens: %w", err))
		return
	}
	defer rows.Close()
	out := []apiToken{}
	for rows.Next() {
		var t apiToken
		if err := rows.Scan(&t.ID, &t.Name, &t.CreatedAt, &t.LastUsedAt); err != nil {
			s.fail(w, r, fmt.Errorf("list tokens: %w", err))
			return
		}
		out = append(out, t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// deleteToken answers DELETE /api/v1/tokens/{id}.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	if _, err := s.db.Pool.Exec(r.Context(), `DELETE FROM api_tokens WHERE id = $1`, r.PathValue("id")); err != nil {
		s.fail(w, r, fmt.Errorf("delete token: %w", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
