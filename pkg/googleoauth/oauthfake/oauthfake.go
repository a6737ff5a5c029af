// Package oauthfake is a fake OAuth 2.0 server (Google's, or with
// RotateRefresh the Microsoft identity platform's behaviour) for tests: an
// authorization endpoint that redirects straight back with a code, and a
// token endpoint that speaks RFC 6749 JSON (authorization_code with PKCE,
// refresh_token, invalid_grant for revoked grants). Safe for concurrent use.
package oauthfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// Server is the fake. Create it with New; it closes with the test.
type Server struct {
	*httptest.Server
	ClientID, ClientSecret string

	mu        sync.Mutex
	codes     map[string]string // code → PKCE challenge
	refresh   map[string]bool   // refresh token → valid
	access    map[string]time.Time
	n         int
	TTL       time.Duration // access token lifetime (default 1h)
	Refreshes int           // refresh_token grants served
	// RotateRefresh makes every refresh_token grant return a new refresh
	// token too, as the Microsoft identity platform does (the old one stays
	// valid until revoked).
	RotateRefresh bool
	// Scope is the granted scope the token endpoint reports (default
	// Gmail's read-only scope).
	Scope string
}

// New starts a fake OAuth server for one client id/secret.
func New(clientID, clientSecret string) *Server {
	s := &Server{ClientID: clientID, ClientSecret: clientSecret,
		codes: map[string]string{}, refresh: map[string]bool{}, access: map[string]time.Time{}, TTL: time.Hour}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth", s.auth)
	mux.HandleFunc("POST /token", s.token)
	s.Server = httptest.NewServer(mux)
	return s
}

// AuthURL is the authorization endpoint.
func (s *Server) AuthURL() string { return s.URL + "/auth" }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.URL + "/token" }

// ValidAccess reports whether an access token was issued and has not expired.
func (s *Server) ValidAccess(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.access[tok]
	return ok && time.Now().Before(exp)
}

// ExpireAll makes every issued access token invalid, forcing refreshes.
func (s *Server) ExpireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.access {
		s.access[k] = time.Time{}
	}
}

// Revoke invalidates a refresh token and every access token.
func (s *Server) Revoke(refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[refreshToken] = false
	s.access = map[string]time.Time{}
}

// RevokeAll invalidates every refresh and access token issued so far, as
// when the user withdraws the app's access.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.refresh {
		s.refresh[k] = false
	}
	s.access = map[string]time.Time{}
}

// IssueRefreshToken creates a valid refresh token directly (skipping the web flow).
func (s *Server) IssueRefreshToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	rt := fmt.Sprintf("refresh-%d", s.n)
	s.refresh[rt] = true
	return rt
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" {
		http.Error(w, "bad client or response_type", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.n++
	code := fmt.Sprintf("code-%d", s.n)
	s.codes[code] = q.Get("code_challenge")
	s.mu.Unlock()
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func oauthError(w http.ResponseWriter, code int, errCode, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": errCode, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request", err.Error())
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.ClientID || secret != s.ClientSecret {
		oauthError(w, 401, "invalid_client", "The OAuth client was not found.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var refresh string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		challenge, ok := s.codes[r.PostForm.Get("code")]
		if !ok {
			oauthError(w, 400, "invalid_grant", "Malformed auth code.")
			return
		}
		delete(s.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if challenge != "" && base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			oauthError(w, 400, "invalid_grant", "Invalid code verifier.")
			return
		}
		s.n++
		refresh = fmt.Sprintf("refresh-%d", s.n)
		s.refresh[refresh] = true
	case "refresh_token":
		if !s.refresh[r.PostForm.Get("refresh_token")] {
			oauthError(w, 400, "invalid_grant", "Token has been expired or revoked.")
			return
		}
		s.Refreshes++
		if s.RotateRefresh {
			s.n++
			refresh = fmt.Sprintf("refresh-%d", s.n)
			s.refresh[refresh] = true
		}
	default:
		oauthError(w, 400, "unsupported_grant_type", "")
		return
	}
	s.n++
	access := fmt.Sprintf("access-%d", s.n)
	s.access[access] = time.Now().Add(s.TTL)
	resp := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(s.TTL.Seconds()), "scope": s.scope()}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) scope() string {
	if s.Scope != "" {
		return s.Scope
	}
	return "https://www.googleapis.com/auth/gmail.readonly"
}
