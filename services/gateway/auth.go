package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

const (
	sessionCookie = "ownyou_session"
	csrfHeader    = "X-CSRF-Token"
	minPassword   = 8
)

// Auth errors, translated to HTTP once in fail.
var (
	errUnauthenticated = errors.New("authentication required")
	errBadCredentials  = errors.New("wrong password")
	errAlreadySetUp    = errors.New("the admin password is already set")
	errNotSetUp        = errors.New("no admin password yet: finish the first-run setup")
)

// principal is who a request acts as.
type principal struct {
	kind string // session | token | admin_token
	csrf string // the session's CSRF token; empty for bearer auth
}

type principalKey struct{}

// hashToken is how session ids and API tokens are kept at rest.
func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// adminSet reports whether the admin password exists.
func (s *Server) adminSet(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM auth_admin`).Scan(&n); err != nil {
		return false, fmt.Errorf("admin lookup: %w", err)
	}
	return n > 0, nil
}

// setAdminPassword creates the admin; when onlyIfMissing it never replaces one.
func (s *Server) setAdminPassword(ctx context.Context, password string, onlyIfMissing bool) error {
	if len(password) < minPassword {
		return fmt.Errorf("%w: the password needs at least %d characters", errBadInput, minPassword)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	q := `INSERT INTO auth_admin (id, password_hash) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`
	if !onlyIfMissing {
		q = `INSERT INTO auth_admin (id, password_hash) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()`
	}
	tag, err := s.db.Pool.Exec(ctx, q, string(hash))
	if err != nil {
		return fmt.Errorf("store admin: %w", err)
	}
	if onlyIfMissing && tag.RowsAffected() == 0 {
		return errAlreadySetUp
	}
	return nil
}

func (s *Server) checkPassword(ctx context.Context, password string) error {
	var hash string
	err := s.db.Pool.QueryRow(ctx, `SELECT password_hash FROM auth_admin WHERE id = 1`).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotSetUp
	}
	if err != nil {
		return fmt.Errorf("admin lookup: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return errBadCredentials
	}
	return nil
}

// newSession stores a session and sets its cookie; it returns the CSRF token.
func (s *Server) newSession(w http.ResponseWriter, r *http.Request) (string, error) {
	tok, csrf := randomToken(), randomToken()
	exp := time.Now().Add(s.cfg.SessionTTL)
	if _, err := s.db.Pool.Exec(r.Context(), `DELETE FROM auth_sessions WHERE expires_at < now()`); err != nil {
		return "", fmt.Errorf("expire sessions: %w", err)
	}
	if _, err := s.db.Pool.Exec(r.Context(), `INSERT INTO auth_sessions (token_hash, csrf_token, expires_at) VALUES ($1, $2, $3)`,
		hashToken(tok), csrf, exp); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", Expires: exp, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: isTLS(r)})
	return csrf, nil
}

func isTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// authenticate finds the principal of r, or returns errUnauthenticated.
func (s *Server) authenticate(r *http.Request) (principal, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return principal{}, errUnauthenticated
		}
		if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) == 1 {
			return principal{kind: "admin_token"}, nil
		}
		tag, err := s.db.Pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1`, hashToken(tok))
		if err != nil {
			return principal{}, fmt.Errorf("token lookup: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return principal{kind: "token"}, nil
		}
		return principal{}, errUnauthenticated
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return principal{}, errUnauthenticated
	}
	var csrf string
	err = s.db.Pool.QueryRow(ctx, `SELECT csrf_token FROM auth_sessions WHERE token_hash = $1 AND expires_at > now()`, hashToken(c.Value)).Scan(&csrf)
	if errors.Is(err, pgx.ErrNoRows) {
		return principal{}, errUnauthenticated
	}
	if err != nil {
		return principal{}, fmt.Errorf("session lookup: %w", err)
	}
	return principal{kind: "session", csrf: csrf}, nil
}

// publicPath lists what needs no auth: health checks, the auth endpoints, the
// UI's static files (they hold no user data) and OAuth redirects, which arrive
// from the provider without the SameSite=Strict cookie and are checked by
// their state parameter instead.
func publicPath(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/readyz":
		return true
	case p == "/api/v1/auth/status" || p == "/api/v1/auth/login" || p == "/api/v1/auth/setup":
		return true
	case strings.HasPrefix(p, "/api/") && strings.HasSuffix(p, "/callback") && r.Method == http.MethodGet:
		return true
	case !strings.HasPrefix(p, "/api/"):
		return true
	}
	return false
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// requireAuth wraps the route table: every non-public request must carry a
// session cookie (plus the X-CSRF-Token header on state-changing methods) or a
// bearer token.
func (s *Server) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if publicPath(r) {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if p.kind == "session" && !safeMethod(r.Method) {
			got := r.Header.Get(csrfHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.csrf)) != 1 {
				writeError(w, r, http.StatusForbidden, "csrf", "missing or wrong "+csrfHeader+" header; reload the page")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// loginLimiter rate-limits password attempts per client address.
type loginLimiter struct {
	mu   sync.Mutex
	byIP map[string]*rate.Limiter
	r    rate.Limit
	b    int
}

func newLoginLimiter(perMinute, burst int) *loginLimiter {
	return &loginLimiter{byIP: map[string]*rate.Limiter{}, r: rate.Limit(float64(perMinute) / 60), b: burst}
}

func (l *loginLimiter) allow(r *http.Request) bool {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.byIP[ip]
	if !ok {
		if len(l.byIP) > 10000 { // bound memory under a spray of addresses
			l.byIP = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(l.r, l.b)
		l.byIP[ip] = lim
	}
	return lim.Allow()
}

// ensureAdminFromEnv creates the admin from OWNYOU_ADMIN_PASSWORD on an
// unattended install; an existing password is left alone.
func (s *Server) ensureAdminFromEnv(ctx context.Context) error {
	if s.cfg.AdminPassword == "" {
		return nil
	}
	err := s.setAdminPassword(ctx, s.cfg.AdminPassword, true)
	if errors.Is(err, errAlreadySetUp) {
		return nil
	}
	return err
}
