// Package googleoauth runs the OAuth 2.0 web flow for read-only Gmail access
// (offline access, PKCE) and provides token sources that refresh
// automatically and persist every new token. The gateway uses it for
// /api/v1/oauth/google/{start,callback}; the ingest service for syncing.
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

// ErrReconnectNeeded means the grant was revoked or expired: the user must
// run the OAuth flow again. Syncing cannot recover on its own.
var ErrReconnectNeeded = errors.New("google grant revoked or expired: reconnect needed")

// ErrNoRefreshToken means Google returned no refresh token (the account had
// already granted access without prompt=consent), so offline sync is impossible.
var ErrNoRefreshToken = errors.New("google returned no refresh token")

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
	if httpClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, httpClient)
	}
	tok, err := c.OAuth2().Exchange(ctx, code, oauth2.VerifierOption(verifier))
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
	if httpClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, httpClient)
	}
	return &persistingSource{
		ctx:     ctx,
		base:    c.OAuth2().TokenSource(ctx, tok),
		last:    tok,
		persist: persist,
	}
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
		case "invalid_grant", "unauthorized_client", "invalid_client":
			return fmt.Errorf("%w: %s", ErrReconnectNeeded, re.ErrorDescription)
		}
	}
	return err
}
