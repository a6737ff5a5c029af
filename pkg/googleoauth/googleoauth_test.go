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

func TestGrantTokenSource(t *testing.T) {
	f := oauthfake.New("cid", "csecret")
	defer f.Close()
	ctx := context.Background()
	expired := time.Now().Add(-time.Minute)
	tests := []struct {
		name        string
		grant       func() Grant
		wantErr     error
		wantPersist bool
	}{
		{name: "refresh token is refreshed and the new token persisted", wantPersist: true, grant: func() Grant {
			return Grant{TokenURL: f.TokenURL(), ClientID: "cid", ClientSecret: "csecret", Token: &oauth2.Token{RefreshToken: f.IssueRefreshToken(), Expiry: expired}}
		}},
		{name: "revoked refresh token needs reconnect", wantErr: ErrReconnectNeeded, grant: func() Grant {
			rt := f.IssueRefreshToken()
			f.Revoke(rt)
			return Grant{TokenURL: f.TokenURL(), ClientID: "cid", ClientSecret: "csecret", Token: &oauth2.Token{RefreshToken: rt, Expiry: expired}}
		}},
		{name: "wrong client secret needs reconnect", wantErr: ErrReconnectNeeded, grant: func() Grant {
			return Grant{TokenURL: f.TokenURL(), ClientID: "cid", ClientSecret: "nope", Token: &oauth2.Token{RefreshToken: f.IssueRefreshToken(), Expiry: expired}}
		}},
		{name: "valid access token without refresh token is used as is", grant: func() Grant {
			return Grant{Token: &oauth2.Token{AccessToken: "at", Expiry: time.Now().Add(time.Hour)}}
		}},
		{name: "expired access token without refresh token needs reconnect", wantErr: ErrReconnectNeeded, grant: func() Grant {
			return Grant{Token: &oauth2.Token{AccessToken: "at", Expiry: expired}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.grant()
			if err := g.Validate(); err != nil {
				t.Fatal(err)
			}
			var saved []*oauth2.Token
			ts := PersistingTokenSource(ctx, nil, g.OAuth2(), g.Token, func(_ context.Context, tok *oauth2.Token) error {
				saved = append(saved, tok)
				return nil
			})
			tok, err := ts.Token()
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantPersist && (len(saved) != 1 || !f.ValidAccess(tok.AccessToken) || saved[0].RefreshToken == "") {
				t.Fatalf("saved %+v, token %+v: want the refreshed token persisted once", saved, tok)
			}
			if !tc.wantPersist && len(saved) != 0 {
				t.Fatalf("persisted %+v although nothing changed", saved)
			}
		})
	}
}

func TestGrantWithoutTokenIsUnusable(t *testing.T) {
	for _, g := range []Grant{{}, {Token: &oauth2.Token{}}, {Token: &oauth2.Token{RefreshToken: "rt"}}} {
		if err := g.Validate(); !errors.Is(err, ErrGrantUnusable) {
			t.Errorf("Validate(%+v) = %v, want ErrGrantUnusable", g, err)
		}
	}
}
