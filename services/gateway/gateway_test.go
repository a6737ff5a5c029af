package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/gateway"
)

const adminToken = "admin-token-for-tests-0123456789"

type env struct {
	url string
	db  *store.DB
	bus *bus.Bus
}

func start(t *testing.T, mod func(*gateway.Config)) env {
	t.Helper()
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	cfg := gateway.Config{HTTPAddr: "127.0.0.1:0", MaxUploadBytes: 1 << 20, AdminToken: adminToken, EventsInterval: 100 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := gateway.New(cfg, app.Deps{DB: db, Bus: b, Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return env{url: srv.URL, db: db, bus: b}
}

// client is a browser-like client: it keeps cookies and sends the CSRF token
// once it has one.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
	auth string
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, hc: &http.Client{Jar: jar}}
}

func (c *client) do(method, path, body string) (*http.Response, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestAuthFlow(t *testing.T) {
	e := start(t, nil)
	c := newClient(t, e.url)

	t.Run("a request before sign-in is refused with a JSON error", func(t *testing.T) {
		resp, out := c.do("GET", "/api/v1/emails", "")
		if resp.StatusCode != http.StatusUnauthorized || errCode(out) != "unauthenticated" {
			t.Fatalf("status %d %v, want 401 unauthenticated", resp.StatusCode, out)
		}
	})
	t.Run("health and the UI need no sign-in", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/", "/assets/app.js"} {
			if resp, _ := c.do("GET", p, ""); resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %d, want 200", p, resp.StatusCode)
			}
		}
	})
	t.Run("status says setup is needed on first run", func(t *testing.T) {
		_, out := c.do("GET", "/api/v1/auth/status", "")
		if out["setup_needed"] != true || out["authenticated"] != false {
			t.Fatalf("status %v", out)
		}
	})
	t.Run("a short password is rejected at setup", func(t *testing.T) {
		if resp, out := c.do("POST", "/api/v1/auth/setup", `{"password":"short"}`); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d %v, want 400", resp.StatusCode, out)
		}
	})
	t.Run("setup creates the admin and signs in with a strict HttpOnly cookie", func(t *testing.T) {
		resp, out := c.do("POST", "/api/v1/auth/setup", `{"password":"correct horse battery"}`)
		if resp.StatusCode != http.StatusCreated || out["csrf_token"] == "" {
			t.Fatalf("status %d %v", resp.StatusCode, out)
		}
		var ck *http.Cookie
		for _, x := range resp.Cookies() {
			if x.Name == "ownyou_session" {
				ck = x
			}
		}
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Fatalf("session cookie %+v, want HttpOnly SameSite=Strict", ck)
		}
		c.csrf = out["csrf_token"].(string)
	})
	t.Run("setup cannot run twice", func(t *testing.T) {
		other := newClient(t, e.url)
		if resp, out := other.do("POST", "/api/v1/auth/setup", `{"password":"another password"}`); resp.StatusCode != http.StatusConflict {
			t.Fatalf("status %d %v, want 409", resp.StatusCode, out)
		}
	})
	t.Run("the session reads the API", func(t *testing.T) {
		if resp, out := c.do("GET", "/api/v1/emails", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %v", resp.StatusCode, out)
		}
	})
	t.Run("a state change without the CSRF token is refused", func(t *testing.T) {
		saved := c.csrf
		c.csrf = ""
		resp, out := c.do("PUT", "/api/v1/settings", `{"llm_model":"x"}`)
		c.csrf = saved
		if resp.StatusCode != http.StatusForbidden || errCode(out) != "csrf" {
			t.Fatalf("status %d %v, want 403 csrf", resp.StatusCode, out)
		}
	})
	t.Run("a state change with the CSRF token is accepted", func(t *testing.T) {
		if resp, out := c.do("PUT", "/api/v1/settings", `{"llm_model":"llama3","llm_monthly_budget":5}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %v", resp.StatusCode, out)
		}
		_, out := c.do("GET", "/api/v1/settings", "")
		if out["llm_model"] != "llama3" || out["llm_monthly_budget"] != 5.0 {
			t.Fatalf("settings %v", out)
		}
	})
	t.Run("an API token works as a bearer and stops working once revoked", func(t *testing.T) {
		_, tok := c.do("POST", "/api/v1/tokens", `{"name":"script"}`)
		script := newClient(t, e.url)
		script.auth = "Bearer " + tok["token"].(string)
		if resp, _ := script.do("POST", "/api/v1/pipeline/embedder/reprocess", ""); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("bearer POST: %d, want 202 (no CSRF needed for tokens)", resp.StatusCode)
		}
		c.do("DELETE", "/api/v1/tokens/"+tok["id"].(string), "")
		if resp, _ := script.do("GET", "/api/v1/emails", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("revoked token: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("OWNYOU_ADMIN_TOKEN is accepted and a wrong bearer is not", func(t *testing.T) {
		s := newClient(t, e.url)
		s.auth = "Bearer " + adminToken
		if resp, _ := s.do("GET", "/api/v1/pipeline", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("admin token: %d", resp.StatusCode)
		}
		s.auth = "Bearer nope"
		if resp, _ := s.do("GET", "/api/v1/pipeline", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("logout ends the session", func(t *testing.T) {
		c.do("POST", "/api/v1/auth/logout", "")
		if resp, _ := c.do("GET", "/api/v1/emails", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after logout: %d, want 401", resp.StatusCode)
		}
	})
	t.Run("a wrong password is refused and repeated attempts are rate-limited", func(t *testing.T) {
		l := newClient(t, e.url)
		got429 := false
		for i := 0; i < 15; i++ {
			resp, out := l.do("POST", "/api/v1/auth/login", `{"password":"wrong password"}`)
			if resp.StatusCode == http.StatusTooManyRequests {
				got429 = true
				break
			}
			if resp.StatusCode != http.StatusUnauthorized || errCode(out) != "bad_credentials" {
				t.Fatalf("attempt %d: %d %v", i, resp.StatusCode, out)
			}
		}
		if !got429 {
			t.Fatal("15 wrong passwords were never rate-limited")
		}
	})
}

func TestAdminPasswordFromEnvSignsIn(t *testing.T) {
	e := start(t, func(c *gateway.Config) { c.AdminPassword = "unattended-pass" })
	c := newClient(t, e.url)
	if _, out := c.do("GET", "/api/v1/auth/status", ""); out["setup_needed"] != false {
		t.Fatalf("status %v, want no setup needed", out)
	}
	resp, out := c.do("POST", "/api/v1/auth/login", `{"password":"unattended-pass"}`)
	if resp.StatusCode != http.StatusOK || out["csrf_token"] == nil {
		t.Fatalf("login: %d %v", resp.StatusCode, out)
	}
}

func admin(t *testing.T, e env) *client {
	c := newClient(t, e.url)
	c.auth = "Bearer " + adminToken
	return c
}

func TestEmailHTMLIsSanitizedAndLocked(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	now := time.Now()
	evil := `<p>Hello</p><script>document.title='pwned'</script><img src="https://tracker.example/p.gif" onerror="document.title='pwned'">` +
		`<a href="javascript:document.title='pwned'">click</a><iframe src="https://evil.example"></iframe><form action="https://evil.example"><input name=x></form>`
	if _, err := e.db.InsertEmail(ctx, store.Email{MessageID: "m1@x", ContentHash: "h1", Subject: "evil", FromAddr: "a@x", SentAt: &now, BodyHTML: evil, BodyText: "Hello", Raw: []byte("Subject: evil\r\n\r\nHello\r\n")}); err != nil {
		t.Fatal(err)
	}
	id := store.EmailID("m1@x", "h1")
	c := admin(t, e)
	resp, err := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", e.url+"/api/v1/emails/"+id+"/html", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		return http.DefaultClient.Do(req)
	}()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := strings.ToLower(string(body))
	for _, bad := range []string{"<script", "onerror", "javascript:", "<iframe", "<form"} {
		if strings.Contains(html, bad) {
			t.Errorf("sanitized HTML still contains %q:\n%s", bad, body)
		}
	}
	if !strings.Contains(string(body), "<p>Hello</p>") {
		t.Errorf("harmless content lost:\n%s", body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'none'") || strings.Contains(csp, "https:") {
		t.Errorf("CSP %q, want no scripts and no remote images by default", csp)
	}
	r2, out := c.do("GET", "/api/v1/emails/"+id, "")
	if r2.StatusCode != http.StatusOK || out["classifications"] == nil || out["stages"] == nil {
		t.Errorf("detail %d %v, want classifications and stages", r2.StatusCode, out)
	}
	r3, _ := c.do("GET", "/api/v1/emails/"+id+"/raw", "")
	if r3.StatusCode != http.StatusOK || r3.Header.Get("Content-Type") != "message/rfc822" {
		t.Errorf("raw: %d %s", r3.StatusCode, r3.Header.Get("Content-Type"))
	}
}

func TestDeadLetterRetryRepublishesAndResolves(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	payload := []byte(`{"v":1,"id":"emails.ingested:e1","type":"emails.ingested","data":{"email_id":"e1"}}`)
	if err := e.db.RecordDeadLetter(ctx, bus.DeadLetter{Stage: "embedder", Subject: "emails.ingested", MsgID: "emails.ingested:e1", Key: "e1", Payload: payload, Error: "boom", Attempts: 3}); err != nil {
		t.Fatal(err)
	}
	dls, _ := e.db.ListDeadLetters(ctx, "", 10)
	if len(dls) != 1 {
		t.Fatalf("dead letters %v", dls)
	}
	got := make(chan *nats.Msg, 1)
	sub, err := e.bus.Conn().ChanSubscribe("emails.ingested", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c := admin(t, e)
	if resp, out := c.do("POST", "/api/v1/deadletters/"+jsonID(dls[0].ID)+"/retry", ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("retry: %d %v", resp.StatusCode, out)
	}
	select {
	case m := <-got:
		var a, b map[string]any
		_ = json.Unmarshal(m.Data, &a)
		_ = json.Unmarshal(payload, &b)
		if a["id"] != b["id"] || m.Header.Get(nats.MsgIdHdr) == "emails.ingested:e1" {
			t.Errorf("republished %s (msg id %s), want the stored envelope under a new msg id", m.Data, m.Header.Get(nats.MsgIdHdr))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the dead letter was not re-published")
	}
	if left, _ := e.db.ListDeadLetters(ctx, "", 10); len(left) != 0 {
		t.Errorf("dead letter still unresolved: %v", left)
	}
	if resp, _ := c.do("POST", "/api/v1/deadletters/999999/retry", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown dead letter: %d, want 404", resp.StatusCode)
	}
}

func jsonID(id int64) string { b, _ := json.Marshal(id); return string(b) }

func TestPipelineControls(t *testing.T) {
	e := start(t, nil)
	c := admin(t, e)
	cases := []struct {
		name, path string
		want       int
	}{
		{"an unknown stage cannot be paused", "/api/v1/pipeline/nope/pause", http.StatusNotFound},
		{"ingest cannot be reprocessed", "/api/v1/pipeline/ingest/reprocess", http.StatusNotFound},
		{"a stage whose service never started cannot be paused", "/api/v1/pipeline/embedder/pause", http.StatusConflict},
		{"a bad reprocess mode is rejected", "/api/v1/pipeline/embedder/reprocess?mode=some", http.StatusBadRequest},
		{"reprocessing missing emails is accepted", "/api/v1/pipeline/classifier/reprocess?mode=missing", http.StatusAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if resp, out := c.do("POST", tc.path, ""); resp.StatusCode != tc.want {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, out, tc.want)
			}
		})
	}
}

func TestDeleteEverythingNeedsConfirmation(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	now := time.Now()
	if _, err := e.db.InsertEmail(ctx, store.Email{MessageID: "m@x", ContentHash: "h", Subject: "s", SentAt: &now}); err != nil {
		t.Fatal(err)
	}
	c := admin(t, e)
	if resp, _ := c.do("POST", "/api/v1/delete-everything", `{"confirm":"yes"}`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unconfirmed delete: %d, want 400", resp.StatusCode)
	}
	if page, _ := e.db.ListEmails(ctx, 10, ""); len(page.Emails) != 1 {
		t.Fatal("an unconfirmed delete removed mail")
	}
	if resp, out := c.do("POST", "/api/v1/delete-everything", `{"confirm":"DELETE"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete: %d %v", resp.StatusCode, out)
	}
	if page, _ := e.db.ListEmails(ctx, 10, ""); len(page.Emails) != 0 {
		t.Fatal("mail left after delete everything")
	}
	if resp, _ := c.do("GET", "/api/v1/pipeline", ""); resp.StatusCode != http.StatusOK {
		t.Fatal("the admin token stopped working after delete everything")
	}
}

func TestEventsStreamMissionsAndPipeline(t *testing.T) {
	e := start(t, nil)
	req, _ := http.NewRequest("GET", e.url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	seen := map[string]string{}
	published := false
	for len(seen) < 2 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v (seen %v)", err, seen)
		}
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "event: "); ok {
			data, _ := rd.ReadString('\n')
			seen[name] = data
			if name == "pipeline" && !published {
				published = true
				if err := bus.Publish(ctx, e.bus, bus.MissionsCreated, "m1", bus.MissionEvent{MissionID: "m1", Agent: "travel", Status: "created"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if !strings.Contains(seen["mission"], `"mission_id":"m1"`) || !strings.Contains(seen["pipeline"], `"stages"`) {
		t.Fatalf("events %v", seen)
	}
}

func TestExportCarriesEverythingButSecrets(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	now := time.Now()
	raw := "Message-ID: <x@y>\r\nSubject: hello export\r\n\r\nFrom the body\r\n"
	if _, err := e.db.InsertEmail(ctx, store.Email{MessageID: "x@y", ContentHash: "h", Subject: "hello export", FromAddr: "a@b", SentAt: &now, Raw: []byte(raw)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, format string
		check        func(t *testing.T, body string)
	}{
		{"json holds the email without its raw bytes", "json", func(t *testing.T, body string) {
			var doc map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("export is not JSON: %v\n%s", err, body)
			}
			var emails []map[string]any
			if err := json.Unmarshal(doc["emails"], &emails); err != nil {
				t.Fatalf("emails: %v", err)
			}
			if len(emails) != 1 || emails[0]["subject"] != "hello export" {
				t.Fatalf("emails %v", emails)
			}
			if _, ok := emails[0]["raw_zstd"]; ok {
				t.Fatal("export carries the compressed raw bytes")
			}
		}},
		{"mbox holds the original with From_ lines quoted", "mbox", func(t *testing.T, body string) {
			if !strings.HasPrefix(body, "From a@b ") || !strings.Contains(body, "Subject: hello export") || !strings.Contains(body, "\n>From the body") {
				t.Fatalf("mbox:\n%s", body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.url+"/api/v1/export?format="+tc.format, nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			tc.check(t, string(b))
		})
	}
}

func TestShutdownDoesNotWaitForOpenEventStreams(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	s, err := gateway.New(gateway.Config{HTTPAddr: "127.0.0.1:0", AdminToken: adminToken}, app.Deps{DB: db, Bus: b, Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown waited for the open event stream")
	}
}

func TestPipelineShowsWorkersAliveAndStalls(t *testing.T) {
	e := start(t, func(c *gateway.Config) { c.StallAfter = time.Minute })
	ctx := context.Background()
	for _, svc := range []string{"ingest", "classifier"} {
		hb, err := ops.NewHeartbeat(e.bus, ops.HeartbeatOptions{Service: svc, Host: "nas-" + svc, PID: 7})
		if err != nil {
			t.Fatal(err)
		}
		if err := hb.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	old, err := ops.NewHeartbeat(e.bus, ops.HeartbeatOptions{Service: "embedder", Host: "gone", PID: 8,
		Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO sources (id, kind, account, status, heartbeat_at) VALUES ('s1', 'imap', 'me@home.example', 'syncing', now() - interval '1 hour')`); err != nil {
		t.Fatal(err)
	}

	var p struct {
		Stages []struct {
			Name        string     `json:"name"`
			Workers     []ops.Beat `json:"workers"`
			Stalled     bool       `json:"stalled"`
			StallReason string     `json:"stall_reason"`
		} `json:"stages"`
		StalledSources []ops.SourceStatus `json:"stalled_sources"`
	}
	resp, err := http.DefaultClient.Do(authed(t, e.url+"/api/v1/pipeline"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET pipeline: %d %v", resp.StatusCode, err)
	}
	hosts := map[string][]string{}
	stalled := map[string]string{}
	for _, s := range p.Stages {
		for _, w := range s.Workers {
			hosts[s.Name] = append(hosts[s.Name], w.Host)
		}
		if s.Stalled {
			stalled[s.Name] = s.StallReason
		}
	}
	cases := []struct {
		name  string
		stage string
		want  []string
	}{
		{"a beating worker of a stage without a queue is listed", "ingest", []string{"nas-ingest"}},
		{"a beating worker is listed under its stage", "classifier", []string{"nas-classifier"}},
		{"a worker silent past the stall threshold is not alive", "embedder", nil},
		{"a stage without heartbeats has no workers", "agents", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Equal(hosts[tc.stage], tc.want) {
				t.Errorf("%s workers %v, want %v", tc.stage, hosts[tc.stage], tc.want)
			}
		})
	}
	if len(p.StalledSources) != 1 || p.StalledSources[0].ID != "s1" || stalled["ingest"] == "" {
		t.Errorf("stalled sources %+v, stalled stages %v: want source s1 flagged and ingest stalled", p.StalledSources, stalled)
	}
}

func authed(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	return req
}

func TestSearchTermListsAreComputedOnceThereIsEnoughMail(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	s, err := gateway.New(gateway.Config{HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, SearchTerms: 50 * time.Millisecond},
		app.Deps{DB: db, Bus: b, Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s)
	ctx := context.Background()
	// 5,000 mails, more than the default CommonTermDocs (2,000), all mention the ferry.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO emails (id, message_id, content_hash, subject, from_addr, sort_at, body_text)
		SELECT 'm' || i, 'm' || i, 'm' || i, 'Ferry ' || i, 'port@city.test', now() - i * interval '1 hour', 'The ferry leaves at ' || i
		FROM generate_series(1, 5000) i`); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, func() bool {
		var n int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM search_term_top t JOIN search_term_state st ON st.mails = 5000 WHERE t.lexeme = 'ferri'`).Scan(&n)
		return err == nil && n > 0
	}, "the gateway never computed the common-term lists")
}

func TestSearchTermListsRefreshBacksOffWhileFailing(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	// Every look at the lists' state fails, and counts itself in a sequence
	// (nextval is not rolled back with the failing statement).
	if _, err := db.Pool.Exec(ctx, `
CREATE SEQUENCE refresh_attempts;
ALTER TABLE search_term_state RENAME TO search_term_state_real;
CREATE FUNCTION broken_state() RETURNS SETOF search_term_state_real LANGUAGE plpgsql AS $$
BEGIN PERFORM nextval('refresh_attempts'); RAISE EXCEPTION 'state unreadable'; END $$;
CREATE VIEW search_term_state AS SELECT * FROM broken_state();`); err != nil {
		t.Fatal(err)
	}
	const tick = 20 * time.Millisecond
	s, err := gateway.New(gateway.Config{HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, SearchTerms: tick},
		app.Deps{DB: db, Bus: b, Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, s)
	attempts := func() int64 {
		var n int64
		if err := db.Pool.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM refresh_attempts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return attempts() > 0 }, "the refresh loop never ran")
	// 100 ticks more: skipping 1, 2, 4, … ticks after each failure makes
	// about 7 attempts in all; retrying every tick would make up to 100.
	time.Sleep(100 * tick)
	if attempts := attempts(); attempts < 2 || attempts > 12 {
		t.Errorf("%d refresh attempts in 100 ticks of failures, want 2..12 (retried, with backoff)", attempts)
	}
}
