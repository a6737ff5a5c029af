package msgraph

import (
	"context"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/pkg/googleoauth"
)

// DefaultAuthority is the Microsoft identity platform's multi-tenant
// authority: personal Microsoft accounts and work or school accounts of any
// organization can sign in.
const DefaultAuthority = "https://login.microsoftonline.com/common"

// Scopes are the delegated permissions requested: a refresh token
// (offline_access), read-only mail, and the signed-in user's address.
var Scopes = []string{"offline_access", "User.Read", "Mail.Read"}

// OAuthConfig is an app registration in the Microsoft identity platform
// (OWNYOU_MICROSOFT_CLIENT_ID and, for a "Web" platform registration,
// OWNYOU_MICROSOFT_CLIENT_SECRET) and the gateway's callback URL.
type OAuthConfig struct {
	ClientID string
	// ClientSecret is required for a "Web" platform registration (any
	// redirect URI); a "Mobile and desktop applications" (public client)
	// registration has none and may only redirect to http://localhost.
	ClientSecret string
	RedirectURL  string
	// Authority is the tenant's authority URL; default DefaultAuthority.
	Authority string
	// AuthURL and TokenURL override the endpoints the authority implies
	// (tests use a local fake).
	AuthURL  string
	TokenURL string
}

// Enabled reports whether a client id is configured.
func (c OAuthConfig) Enabled() bool { return c.ClientID != "" }

// OAuth2 returns the x/oauth2 configuration of the authorization-code flow
// against c's authority (v2.0 endpoints).
func (c OAuthConfig) OAuth2() *oauth2.Config {
	auth := strings.TrimRight(c.Authority, "/")
	if auth == "" {
		auth = DefaultAuthority
	}
	ep := oauth2.Endpoint{AuthURL: auth + "/oauth2/v2.0/authorize", TokenURL: auth + "/oauth2/v2.0/token", AuthStyle: oauth2.AuthStyleInParams}
	if c.AuthURL != "" {
		ep.AuthURL = c.AuthURL
	}
	if c.TokenURL != "" {
		ep.TokenURL = c.TokenURL
	}
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL, Endpoint: ep, Scopes: Scopes}
}

// AuthCodeURL returns the sign-in URL for state with a PKCE challenge for
// verifier (see oauth2.GenerateVerifier); the user picks the account.
func (c OAuthConfig) AuthCodeURL(state, verifier string) string {
	return c.OAuth2().AuthCodeURL(state, oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("prompt", "select_account"), oauth2.SetAuthURLParam("response_mode", "query"))
}

// Exchange trades an authorization code for a token that must carry a
// refresh token (googleoauth.ErrNoRefreshToken otherwise). httpClient may be nil.
func (c OAuthConfig) Exchange(ctx context.Context, httpClient *http.Client, code, verifier string) (*oauth2.Token, error) {
	return googleoauth.ExchangeOffline(ctx, httpClient, c.OAuth2(), code, verifier)
}

// TokenSource returns a token source that refreshes tok when it expires,
// persists every new token (Microsoft rotates refresh tokens) and reports a
// revoked or expired grant as googleoauth.ErrReconnectNeeded. It is safe for
// concurrent use; ctx must outlive it.
func (c OAuthConfig) TokenSource(ctx context.Context, httpClient *http.Client, tok *oauth2.Token, persist googleoauth.PersistFunc) oauth2.TokenSource {
	return googleoauth.PersistingTokenSource(ctx, httpClient, c.OAuth2(), tok, persist)
}
