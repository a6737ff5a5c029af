package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/gmailfake"
	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/secretbox"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

type srcEnv struct {
	t            *testing.T
	lastCallback string
	db           *store.DB
	http         *httptest.Server
	cfg          Config
	oauth        *oauthfake.Server
	gm           *gmailfake.Server
}

func newSrcEnv(t *testing.T, withGoogle bool) *srcEnv {
	t.Helper()
	return newSrcEnvWith(t, withGoogle, func(*SourcesConfig) {})
}

// newSrcEnvWith is newSrcEnv with the sources config adjusted by set.
func newSrcEnvWith(t *testing.T, withGoogle bool, set func(*SourcesConfig)) *srcEnv {
	t.Helper()
	e := &srcEnv{t: t, db: testkit.DB(t)}
	e.cfg = Config{HTTPAddr: "127.0.0.1:0", AdminToken: testAdminToken}
	e.cfg.DataDir = t.TempDir()
	if withGoogle {
		e.oauth = oauthfake.New("cid", "csecret")
		t.Cleanup(e.oauth.Close)
		e.gm = gmailfake.New("Person@Example.com")
		e.gm.Authorize = e.oauth.ValidAccess
		t.Cleanup(e.gm.Close)
		e.cfg.Sources = SourcesConfig{GoogleClientID: "cid", GoogleClientSecret: "csecret", GoogleAuthURL: e.oauth.AuthURL(),
			GoogleTokenURL: e.oauth.TokenURL(), GmailEndpoint: e.gm.Endpoint(), UIRedirect: "/#/sources"}
	}
	set(&e.cfg.Sources)
	// The handler is served by httptest; PublicURL must point at it, so
	// build the server in two steps.
	var h http.Handler
	e.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.http.Close)
	e.cfg.Sources.PublicURL = e.http.URL
	srv, err := New(e.cfg, app.Deps{DB: e.db, Bus: testkit.NATS(t, nil), Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.ln.Close() })
	h = asAdmin(srv.Handler())
	return e
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *srcEnv) do(method, path, body string) (*http.Response, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp, m
}

// connectGoogle runs the browser's side of the OAuth web flow and returns
// the final redirect target.
func (e *srcEnv) connectGoogle(query string) *url.URL {
	e.t.Helper()
	return e.connect("google", query)
}

// connect runs the browser's side of a provider's OAuth web flow against a
// fake that consents at once, and returns the final redirect target.
func (e *srcEnv) connect(provider, query string) *url.URL {
	e.t.Helper()
	resp, body := e.do("GET", "/api/v1/oauth/"+provider+"/start"+query, "")
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("start: %d %v", resp.StatusCode, body)
	}
	consent, err := noFollow.Get(resp.Header.Get("Location")) // the fake consents at once
	if err != nil {
		e.t.Fatal(err)
	}
	consent.Body.Close()
	cb, _ := url.Parse(consent.Header.Get("Location"))
	if !strings.HasPrefix(cb.String(), e.http.URL+"/api/v1/oauth/"+provider+"/callback") {
		e.t.Fatalf("redirected to %s, want our callback", cb)
	}
	resp, body = e.do("GET", cb.RequestURI(), "")
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("callback: %d %v", resp.StatusCode, body)
	}
	done, _ := url.Parse(resp.Header.Get("Location"))
	e.lastCallback = cb.RequestURI()
	return done
}

func TestGoogleOAuthConnectsAndReconnectsGmail(t *testing.T) {
	e := newSrcEnv(t, true)
	ctx := context.Background()
	done := e.connectGoogle("")
	q, _ := url.ParseQuery(strings.SplitN(done.String(), "?", 2)[1])
	id := q.Get("connected")
	if id == "" || q.Get("error") != "" {
		t.Fatalf("landed on %s", done)
	}
	src, err := e.db.GetSource(ctx, id)
	if err != nil || src.Kind != store.SourceGmail || src.Account != "person@example.com" || !src.HasSecret || src.Status != store.SourceIdle {
		t.Fatalf("source %+v %v", src, err)
	}
	sealed, _ := e.db.SourceSecret(ctx, id)
	box, _ := secretbox.Load("", e.cfg.DataDir)
	plain, err := box.Open(sealed, []byte(id))
	if err != nil {
		t.Fatalf("secret not sealed for the source: %v", err)
	}
	var tok oauth2.Token
	if json.Unmarshal(plain, &tok); tok.RefreshToken == "" {
		t.Fatal("no refresh token stored")
	}

	// The state is single-use.
	if resp, body := e.do("GET", e.lastCallback, ""); resp.StatusCode != http.StatusBadRequest || body["error"] == nil {
		t.Fatalf("replayed callback: %d %v", resp.StatusCode, body)
	}

	// Reconnecting the same account updates the same source and makes it syncable.
	e.db.Pool.Exec(ctx, `UPDATE sources SET status = 'reconnect_needed', last_error = 'revoked'`)
	done = e.connectGoogle("?source_id=" + id)
	if !strings.Contains(done.String(), "connected="+id) {
		t.Fatalf("reconnect landed on %s", done)
	}
	if src, _ := e.db.GetSource(ctx, id); src.Status != store.SourceIdle || src.LastError != "" {
		t.Fatalf("after reconnect %+v", src)
	}
	if ss, _ := e.db.ListSources(ctx); len(ss) != 1 {
		t.Fatalf("reconnect created a second source: %d", len(ss))
	}
}

func TestGoogleOAuthWithoutClientIsExplained(t *testing.T) {
	e := newSrcEnv(t, false)
	resp, body := e.do("GET", "/api/v1/oauth/google/start", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body["error"].(map[string]any)["message"].(string), "OWNYOU_GOOGLE_CLIENT_ID") {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}

func TestGoogleConsentDeniedLandsWithError(t *testing.T) {
	e := newSrcEnv(t, true)
	resp, _ := e.do("GET", "/api/v1/oauth/google/start", "")
	u, _ := url.Parse(resp.Header.Get("Location"))
	state := u.Query().Get("state")
	resp, _ = e.do("GET", "/api/v1/oauth/google/callback?error=access_denied&state="+state, "")
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "error=") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSourcesAPI(t *testing.T) {
	e := newSrcEnv(t, false)
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"gmail must use the oauth flow", `{"kind":"gmail"}`, 400},
		{"unknown kind is rejected", `{"kind":"pop3"}`, 400},
		{"imap without host is rejected", `{"kind":"imap","username":"u","password":"p"}`, 400},
		{"imap with a bad security mode is rejected", `{"kind":"imap","host":"h","security":"ssl3","username":"u","password":"p"}`, 400},
		{"malformed JSON is rejected", `{`, 400},
		{"imap account is created", `{"kind":"imap","host":"imap.example.com","username":"me","password":"app-pw"}`, 201},
		{"the same imap account twice conflicts", `{"kind":"imap","host":"imap.example.com","username":"me","password":"x"}`, 409},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do("POST", "/api/v1/sources", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, body)
			}
			if tc.status >= 400 && body["error"] == nil {
				t.Fatalf("error body missing: %v", body)
			}
		})
	}
	_, list := e.do("GET", "/api/v1/sources", "")
	srcs := list["sources"].([]any)
	if len(srcs) != 1 {
		t.Fatalf("list %v", list)
	}
	s := srcs[0].(map[string]any)
	id := s["id"].(string)
	if s["kind"] != "imap" || s["status"] != "idle" || s["has_secret"] != true || strings.Contains(toJSON(s), "app-pw") {
		t.Fatalf("source %v", s)
	}
	if cfg := s["config"].(map[string]any); cfg["port"] != float64(993) || cfg["security"] != "tls" {
		t.Fatalf("defaults not applied: %v", cfg)
	}
	steps := []struct {
		method, path string
		status       int
		field, want  string
	}{
		{"POST", "/api/v1/sources/" + id + "/sync", 202, "sync_requested", "true"},
		{"POST", "/api/v1/sources/" + id + "/pause", 200, "status", "paused"},
		{"POST", "/api/v1/sources/" + id + "/resume", 200, "status", "idle"},
		{"GET", "/api/v1/sources/" + id, 200, "id", id},
		{"POST", "/api/v1/sources/nope/sync", 404, "", ""},
		{"DELETE", "/api/v1/sources/" + id, 200, "deleted_emails", "0"},
		{"GET", "/api/v1/sources/" + id, 404, "", ""},
		{"DELETE", "/api/v1/sources/" + id, 404, "", ""},
	}
	for _, st := range steps {
		resp, body := e.do(st.method, st.path, "")
		if resp.StatusCode != st.status {
			t.Fatalf("%s %s: %d, want %d: %v", st.method, st.path, resp.StatusCode, st.status, body)
		}
		if st.field != "" && toJSON(body[st.field]) != st.want && body[st.field] != st.want {
			t.Fatalf("%s %s: %s = %v, want %s", st.method, st.path, st.field, body[st.field], st.want)
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestIMAPXOAuth2SourceIsCreatedWithItsGrantEncrypted(t *testing.T) {
	e := newSrcEnv(t, false)
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"xoauth2 without an oauth object is rejected", `{"kind":"imap","host":"h","username":"u@x","auth":"xoauth2"}`, 400},
		{"xoauth2 without any token is rejected", `{"kind":"imap","host":"h","username":"u@x","auth":"xoauth2","oauth":{"token_url":"https://t/x","client_id":"c"}}`, 400},
		{"refresh token without token URL is rejected", `{"kind":"imap","host":"h","username":"u@x","auth":"xoauth2","oauth":{"client_id":"c","refresh_token":"r"}}`, 400},
		{"refresh token without client id is rejected", `{"kind":"imap","host":"h","username":"u@x","auth":"xoauth2","oauth":{"token_url":"https://t/x","refresh_token":"r"}}`, 400},
		{"unknown auth is rejected", `{"kind":"imap","host":"h","username":"u@x","auth":"kerberos","password":"p"}`, 400},
		{"access token alone is accepted", `{"kind":"imap","host":"imap.a.example","username":"u@x","auth":"xoauth2","oauth":{"access_token":"at-only","expires_in":3600}}`, 201},
		{"refresh grant is accepted", `{"kind":"imap","host":"outlook.office365.com","username":"me@outlook.com","auth":"xoauth2",
			"oauth":{"token_url":"https://login.microsoftonline.com/common/oauth2/v2.0/token","client_id":"cid-1","client_secret":"very-secret","refresh_token":"rt-secret"}}`, 201},
	}
	var created map[string]any
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do("POST", "/api/v1/sources", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, body)
			}
			if tc.status == 201 {
				created = body
			}
		})
	}
	if created == nil {
		t.Fatal("no source created")
	}
	id := created["id"].(string)
	cfg := created["config"].(map[string]any)
	if cfg["auth"] != "xoauth2" || cfg["client_id"] != "cid-1" || cfg["port"] != float64(993) {
		t.Fatalf("config %v", cfg)
	}
	if js := toJSON(created); strings.Contains(js, "rt-secret") || strings.Contains(js, "very-secret") {
		t.Fatalf("secret leaked in the API: %s", js)
	}
	sealed, err := e.db.SourceSecret(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "rt-secret") || strings.Contains(string(sealed), "very-secret") {
		t.Fatal("grant stored in clear")
	}
	box, err := secretbox.Load("", e.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := box.Open(sealed, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	var g googleoauth.Grant
	if err := json.Unmarshal(plain, &g); err != nil || g.Validate() != nil {
		t.Fatalf("stored grant %s: %v", plain, err)
	}
	if g.Token.RefreshToken != "rt-secret" || g.ClientSecret != "very-secret" || g.TokenURL == "" {
		t.Fatalf("stored grant %+v", g)
	}
}

func TestIMAPCredentialsAreReplacedAndTheSourceReconnected(t *testing.T) {
	e := newSrcEnv(t, false)
	ctx := context.Background()
	resp, created := e.do("POST", "/api/v1/sources", `{"kind":"imap","host":"imap.example.com","username":"me@example.com","password":"old-pw"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %v", resp.StatusCode, created)
	}
	id := created["id"].(string)
	// The server rejected the password: the source waits for the user.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE sources SET status = 'reconnect_needed', last_error = 'rejected' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		body   string
		status int
	}{
		{"empty credentials are rejected", "/api/v1/sources/" + id + "/credentials", `{}`, 400},
		{"oauth without a token is rejected", "/api/v1/sources/" + id + "/credentials", `{"auth":"xoauth2","oauth":{}}`, 400},
		{"unknown source is not found", "/api/v1/sources/nope/credentials", `{"password":"x"}`, 404},
		{"switch to OAuth reconnects the source", "/api/v1/sources/" + id + "/credentials",
			`{"auth":"xoauth2","oauth":{"token_url":"https://login.example.com/token","client_id":"cid","client_secret":"cs","refresh_token":"new-rt"}}`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do("POST", tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, body)
			}
		})
	}
	_, s := e.do("GET", "/api/v1/sources/"+id, "")
	cfg := s["config"].(map[string]any)
	if s["status"] != "idle" || s["last_error"] != nil || cfg["auth"] != "xoauth2" || cfg["client_id"] != "cid" || cfg["host"] != "imap.example.com" {
		t.Fatalf("after reconnect: %v", s)
	}
	sealed, _ := e.db.SourceSecret(ctx, id)
	box, _ := secretbox.Load("", e.cfg.DataDir)
	plain, err := box.Open(sealed, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	var g googleoauth.Grant
	if err := json.Unmarshal(plain, &g); err != nil || g.Token == nil || g.Token.RefreshToken != "new-rt" {
		t.Fatalf("stored grant %s: %v", plain, err)
	}
	// And back to a password: the OAuth fields leave the config.
	if resp, body := e.do("POST", "/api/v1/sources/"+id+"/credentials", `{"auth":"password","password":"new-pw"}`); resp.StatusCode != 200 {
		t.Fatalf("back to password: %d %v", resp.StatusCode, body)
	}
	_, s = e.do("GET", "/api/v1/sources/"+id, "")
	if cfg := s["config"].(map[string]any); cfg["auth"] != "password" || cfg["client_id"] != nil {
		t.Fatalf("config %v", cfg)
	}
}
