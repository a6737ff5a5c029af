package googleoauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"golang.org/x/oauth2"
)

func testConfig(f *oauthfake.Server) Config {
	return Config{ClientID: "cid", ClientSecret: "csecret", RedirectURL: "http://127.0.0.1:1/callback", AuthURL: f.AuthURL(), TokenURL: f.TokenURL()}
}

func TestWebFlowExchangesCodeForRefreshToken(t *testing.T) {
	f := oauthfake.New("cid", "csecret")
	defer f.Close()
	cfg := testConfig(f)
	verifier := oauth2.GenerateVerifier()
	start := cfg.AuthCodeURL("st4te", verifier)
	u, _ := url.Parse(start)
	q := u.Query()
	if q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || q.Get("scope") != GmailReadonlyScope || q.Get("code_challenge") == "" {
		t.Fatalf("auth URL lacks offline/consent/scope/PKCE: %s", start)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	if back.Query().Get("state") != "st4te" {
		t.Fatalf("state not returned: %s", back)
	}
	tests := []struct {
		name     string
		code     string
		verifier string
		wantErr  bool
	}{
		{"wrong verifier is rejected", back.Query().Get("code"), oauth2.GenerateVerifier(), true},
		{"unknown code is rejected", "nope", verifier, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cfg.Exchange(context.Background(), nil, tc.code, tc.verifier); (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// The wrong-verifier attempt consumed the first code; run the flow again.
	resp, _ = noFollow.Get(start)
	resp.Body.Close()
	back, _ = url.Parse(resp.Header.Get("Location"))
	tok, err := cfg.Exchange(context.Background(), nil, back.Query().Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || !f.ValidAccess(tok.AccessToken) {
		t.Fatalf("token = %+v", tok)
	}
}

func TestTokenSourceRefreshesAndPersists(t *testing.T) {
	f := oauthfake.New("cid", "csecret")
	defer f.Close()
	cfg := testConfig(f)
	rt := f.IssueRefreshToken()
	var saved []*oauth2.Token
	ts := cfg.TokenSource(context.Background(), nil, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)},
		func(_ context.Context, tok *oauth2.Token) error { saved = append(saved, tok); return nil })
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if !f.ValidAccess(tok.AccessToken) || tok.RefreshToken != rt {
		t.Fatalf("refreshed token = %+v", tok)
	}
	if len(saved) != 1 || saved[0].AccessToken != tok.AccessToken {
		t.Fatalf("persisted %d tokens, want the refreshed one", len(saved))
	}
	if _, err := ts.Token(); err != nil || len(saved) != 1 {
		t.Fatalf("cached token re-persisted or failed: %v, %d", err, len(saved))
	}
}

func TestRevokedGrantNeedsReconnect(t *testing.T) {
	f := oauthfake.New("cid", "csecret")
	defer f.Close()
	cfg := testConfig(f)
	rt := f.IssueRefreshToken()
	f.Revoke(rt)
	ts := cfg.TokenSource(context.Background(), nil, &oauth2.Token{RefreshToken: rt}, nil)
	if _, err := ts.Token(); !errors.Is(err, ErrReconnectNeeded) {
		t.Fatalf("err = %v, want ErrReconnectNeeded", err)
	}
	bad := cfg
	bad.ClientSecret = "wrong"
	if _, err := bad.TokenSource(context.Background(), nil, &oauth2.Token{RefreshToken: f.IssueRefreshToken()}, nil).Token(); !errors.Is(err, ErrReconnectNeeded) {
		t.Fatalf("wrong client secret: err = %v, want ErrReconnectNeeded", err)
	}
}
