// Package googleoauth runs the OAuth 2.0 web flow for read-only Gmail access
// (offline access, PKCE) and provides token sources that refresh
// automatically and persist every new token. The gateway uses it for
// /api/v1/oauth/google/{start,callback}; the ingest service for syncing.
// The same persisting token source serves any provider's grant (Grant:
// IMAP XOAUTH2 sources such as Outlook or Fastmail).
package googleoauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/endpoints"
)

// GmailReadonlyScope is the only scope requested.
const GmailReadonlyScope = "https://www.googleapis.com/auth/gmail.readonly"

// ErrReconnectNeeded means the grant (Google's, or another provider's for
// IMAP XOAUTH2) was revoked or expired: the user must connect the account
// again. Syncing cannot recover on its own.
var ErrReconnectNeeded = errors.New("oauth grant revoked or expired: reconnect needed")

// ErrNoRefreshToken means the provider returned no refresh token (Google:
// the account had already granted access without prompt=consent; Microsoft:
// offline_access was not granted), so offline sync is impossible.
var ErrNoRefreshToken = errors.New("the provider returned no refresh token")

// Config is the OAuth client configuration (OWNYOU_GOOGLE_CLIENT_ID,
// OWNYOU_GOOGLE_CLIENT_SECRET, and the gateway's callback URL).
type Config struct {
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// AuthURL and TokenURL override Google's endpoints (tests use a fake).
	AuthURL  string
	TokenURL string
}

// Enabled reports whether a client id and secret are configured.
func (c Config) Enabled() bool { return c.ClientID != "" && c.ClientSecret != "" }

// OAuth2 returns the x/oauth2 configuration for Gmail read-only access.
func (c Config) OAuth2() *oauth2.Config {
	ep := endpoints.Google
	if c.AuthURL != "" {
		ep.AuthURL = c.AuthURL
	}
	if c.TokenURL != "" {
		ep.TokenURL = c.TokenURL
	}
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		RedirectURL:  c.RedirectURL,
		Endpoint:     ep,
		Scopes:       []string{GmailReadonlyScope},
	}
}

// AuthCodeURL returns the consent URL for state, asking for offline access
// with a forced consent prompt (so Google always returns a refresh token)
// and a PKCE challenge for verifier (see oauth2.GenerateVerifier).
func (c Config) AuthCodeURL(state, verifier string) string {
	return c.OAuth2().AuthCodeURL(state, oauth2.AccessTypeOffline, oauth2.ApprovalForce, oauth2.S256ChallengeOption(verifier))
}

// Exchange trades an authorization code for a token that must carry a
// refresh token. httpClient may be nil.
func (c Config) Exchange(ctx context.Context, httpClient *http.Client, code, verifier string) (*oauth2.Token, error) {
	return ExchangeOffline(ctx, httpClient, c.OAuth2(), code, verifier)
}

// ExchangeOffline trades an authorization code (with its PKCE verifier) for
// a token at any provider's oc, and fails with ErrNoRefreshToken unless the
// token carries a refresh token, which offline sync needs. httpClient may be
// nil.
func ExchangeOffline(ctx context.Context, httpClient *http.Client, oc *oauth2.Config, code, verifier string) (*oauth2.Token, error) {
	if httpClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, httpClient)
	}
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", classify(err))
	}
	if tok.RefreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	return tok, nil
}

// PersistFunc stores a token that replaced the previous one.
type PersistFunc func(ctx context.Context, tok *oauth2.Token) error

// TokenSource returns a token source that refreshes tok when it expires,
// calls persist whenever the token changed (new access token or rotated
// refresh token), and maps revoked grants to ErrReconnectNeeded. It is safe
// for concurrent use. ctx carries the HTTP client for refreshes and must
// outlive the source.
func (c Config) TokenSource(ctx context.Context, httpClient *http.Client, tok *oauth2.Token, persist PersistFunc) oauth2.TokenSource {
	return PersistingTokenSource(ctx, httpClient, c.OAuth2(), tok, persist)
}

// PersistingTokenSource is TokenSource for any provider's oauth2.Config:
// it refreshes tok when it expires, calls persist whenever the token
// changed, and maps revoked grants, and an expired token without a refresh
// token, to ErrReconnectNeeded. It is safe for concurrent use.
func PersistingTokenSource(ctx context.Context, httpClient *http.Client, oc *oauth2.Config, tok *oauth2.Token, persist PersistFunc) oauth2.TokenSource {
	if httpClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, httpClient)
	}
	return &persistingSource{
		ctx:     ctx,
		base:    oc.TokenSource(ctx, tok),
		last:    tok,
		persist: persist,
	}
}

// Grant is an OAuth grant for a provider other than Google's web flow (an
// IMAP XOAUTH2 source): where and as whom to refresh, and the current
// token. Sources store it encrypted, as JSON.
type Grant struct {
	TokenURL     string        `json:"token_url,omitempty"`
	ClientID     string        `json:"client_id,omitempty"`
	ClientSecret string        `json:"client_secret,omitempty"`
	Scopes       []string      `json:"scopes,omitempty"`
	Token        *oauth2.Token `json:"token"`
}

// ErrGrantUnusable means a Grant has neither a refresh token (with a token
// URL and client id) nor an access token.
var ErrGrantUnusable = errors.New("oauth grant needs a refresh token with token URL and client id, or an access token")

// Validate reports ErrGrantUnusable when the grant cannot produce a token.
func (g Grant) Validate() error {
	if g.Token == nil {
		return ErrGrantUnusable
	}
	if g.Token.RefreshToken != "" && (g.TokenURL == "" || g.ClientID == "") {
		return ErrGrantUnusable
	}
	if g.Token.RefreshToken == "" && g.Token.AccessToken == "" {
		return ErrGrantUnusable
	}
	return nil
}

// OAuth2 returns the x/oauth2 configuration that refreshes the grant.
func (g Grant) OAuth2() *oauth2.Config {
	return &oauth2.Config{ClientID: g.ClientID, ClientSecret: g.ClientSecret, Scopes: g.Scopes,
		Endpoint: oauth2.Endpoint{TokenURL: g.TokenURL}}
}

type persistingSource struct {
	ctx     context.Context
	base    oauth2.TokenSource
	persist PersistFunc

	mu   sync.Mutex
	last *oauth2.Token
}

func (p *persistingSource) Token() (*oauth2.Token, error) {
	tok, err := p.base.Token()
	if err != nil {
		p.mu.Lock()
		noRefresh := p.last != nil && p.last.RefreshToken == ""
		p.mu.Unlock()
		if noRefresh {
			// x/oauth2 cannot renew an expired token without a refresh token.
			return nil, fmt.Errorf("%w: access token expired and no refresh token was given", ErrReconnectNeeded)
		}
		return nil, classify(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil || tok.AccessToken != p.last.AccessToken || tok.RefreshToken != p.last.RefreshToken {
		if p.persist != nil {
			if err := p.persist(p.ctx, tok); err != nil {
				return nil, fmt.Errorf("persist refreshed token: %w", err)
			}
		}
		p.last = tok
	}
	return tok, nil
}

// classify maps OAuth errors that no retry can fix to ErrReconnectNeeded.
func classify(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "invalid_grant", "unauthorized_client", "invalid_client",
			// Microsoft identity platform: the user must sign in again
			// (password change, MFA or consent policy, admin revocation).
			"interaction_required", "consent_required":
			return fmt.Errorf("%w: %s", ErrReconnectNeeded, re.ErrorDescription)
		}
	}
	return err
}
