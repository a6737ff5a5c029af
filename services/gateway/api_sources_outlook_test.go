package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/msgraph/graphfake"
	"github.com/ownyou/home/pkg/secretbox"
	"github.com/ownyou/home/pkg/store"
)

// newOutlookSrcEnv is a gateway configured for a fake Microsoft authority
// (rotating refresh tokens) and a fake Graph mailbox.
func newOutlookSrcEnv(t *testing.T) (*srcEnv, *oauthfake.Server, *graphfake.Server) {
	t.Helper()
	of := oauthfake.New("ms-cid", "ms-secret")
	of.RotateRefresh = true
	t.Cleanup(of.Close)
	gf := graphfake.New("Ada@Contoso.test")
	gf.Authorize = of.ValidAccess
	t.Cleanup(gf.Close)
	e := newSrcEnvWith(t, false, func(c *SourcesConfig) {
		c.MicrosoftClientID, c.MicrosoftClientSecret = "ms-cid", "ms-secret"
		c.MicrosoftAuthURL, c.MicrosoftTokenURL, c.GraphEndpoint = of.AuthURL(), of.TokenURL(), gf.Endpoint()
		c.UIRedirect = "/#/sources"
	})
	return e, of, gf
}

func TestMicrosoftOAuthConnectsAndReconnectsOutlook(t *testing.T) {
	e, _, gf := newOutlookSrcEnv(t)
	ctx := context.Background()
	done := e.connect("microsoft", "")
	q, _ := url.ParseQuery(strings.SplitN(done.String(), "?", 2)[1])
	id := q.Get("connected")
	if id == "" || q.Get("error") != "" {
		t.Fatalf("landed on %s", done)
	}
	src, err := e.db.GetSource(ctx, id)
	if err != nil || src.Kind != store.SourceOutlook || src.Account != "ada@contoso.test" || !src.HasSecret || src.Status != store.SourceIdle {
		t.Fatalf("source %+v %v", src, err)
	}
	if gf.Calls("me") != 1 {
		t.Errorf("Graph /me called %d times, want once to learn the address", gf.Calls("me"))
	}
	sealed, _ := e.db.SourceSecret(ctx, id)
	box, _ := secretbox.Load("", e.cfg.DataDir)
	plain, err := box.Open(sealed, []byte(id))
	var tok oauth2.Token
	if err != nil || json.Unmarshal(plain, &tok) != nil || tok.RefreshToken == "" {
		t.Fatalf("stored token: %v %+v", err, tok)
	}
	if resp, body := e.do("GET", e.lastCallback, ""); resp.StatusCode != http.StatusBadRequest || body["error"] == nil {
		t.Fatalf("replayed callback: %d %v", resp.StatusCode, body)
	}

	e.db.Pool.Exec(ctx, `UPDATE sources SET status = 'reconnect_needed', last_error = 'revoked'`)
	done = e.connect("microsoft", "?source_id="+id)
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

func TestSourcesListTellsWhichProvidersAreSetUpAndTheirRedirectURIs(t *testing.T) {
	e, _, _ := newOutlookSrcEnv(t)
	resp, body := e.do("GET", "/api/v1/sources", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %v", resp.StatusCode, body)
	}
	ol, _ := body["outlook"].(map[string]any)
	gm, _ := body["gmail"].(map[string]any)
	if ol["configured"] != true || ol["redirect_uri"] != e.http.URL+"/api/v1/oauth/microsoft/callback" {
		t.Errorf("outlook %v", ol)
	}
	if gm["configured"] != false || gm["redirect_uri"] != e.http.URL+"/api/v1/oauth/google/callback" {
		t.Errorf("gmail %v", gm)
	}
}

func TestMicrosoftWithoutClientIsExplained(t *testing.T) {
	e := newSrcEnv(t, false)
	resp, body := e.do("GET", "/api/v1/oauth/microsoft/start", "")
	msg, _ := body["error"].(map[string]any)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(msg["message"].(string), "/api/v1/oauth/microsoft/callback") {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}

func TestMicrosoftConsentDeniedLandsWithTheReason(t *testing.T) {
	e, _, _ := newOutlookSrcEnv(t)
	resp, _ := e.do("GET", "/api/v1/oauth/microsoft/start", "")
	u, _ := url.Parse(resp.Header.Get("Location"))
	state := u.Query().Get("state")
	resp, _ = e.do("GET", "/api/v1/oauth/microsoft/callback?error=access_denied&error_description=AADSTS65004%3A+User+declined&state="+state, "")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, "error=") || !strings.Contains(loc, "declined") {
		t.Fatalf("%d %s", resp.StatusCode, loc)
	}
}

func TestAGoogleStateIsRefusedAtTheMicrosoftCallback(t *testing.T) {
	e, _, _ := newOutlookSrcEnv(t)
	if err := e.db.SaveOAuthState(context.Background(), "st-google", "google", "v", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.do("GET", "/api/v1/oauth/microsoft/callback?code=x&state=st-google", ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%d %v", resp.StatusCode, body)
	}
}
