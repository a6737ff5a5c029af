package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	gmail "google.golang.org/api/gmail/v1"
	"google.golang.org/api/option"

	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/msgraph"
	"github.com/ownyou/home/pkg/secretbox"
	"github.com/ownyou/home/pkg/store"
)

// SourcesConfig is the gateway's part of connecting mailboxes: the Google
// OAuth client and the key that encrypts credentials at rest (the ingest
// service must use the same key: same OWNYOU_SECRET_KEY or data dir).
type SourcesConfig struct {
	SecretKey          string `env:"OWNYOU_SECRET_KEY" secret:"true" help:"base64 or hex 32-byte key for credentials at rest; default: a generated key file in the data dir"`
	GoogleClientID     string `env:"OWNYOU_GOOGLE_CLIENT_ID" help:"OAuth client id for Gmail (Google Cloud console, web application); optional: empty = Gmail cannot be connected"`
	GoogleClientSecret string `env:"OWNYOU_GOOGLE_CLIENT_SECRET" secret:"true" help:"OAuth client secret for Gmail; optional, goes with OWNYOU_GOOGLE_CLIENT_ID"`
	PublicURL          string `env:"OWNYOU_PUBLIC_URL" help:"URL the browser uses to reach the gateway (for the OAuth redirect); default http://<OWNYOU_HTTP_ADDR>"`
	GoogleAuthURL      string `env:"OWNYOU_GOOGLE_AUTH_URL" help:"override of Google's OAuth consent endpoint (tests)"`
	GoogleTokenURL     string `env:"OWNYOU_GOOGLE_TOKEN_URL" help:"override of Google's OAuth token endpoint (tests)"`
	GmailEndpoint      string `env:"OWNYOU_GMAIL_ENDPOINT" help:"override of the Gmail API root (tests)"`
	UIRedirect         string `env:"OWNYOU_OAUTH_DONE_PATH" envDefault:"/#/sources" help:"where the browser lands after connecting an account"`

	MicrosoftClientID     string `env:"OWNYOU_MICROSOFT_CLIENT_ID" help:"application (client) id of the Microsoft Entra app registration for Outlook; optional: empty = Outlook cannot be connected"`
	MicrosoftClientSecret string `env:"OWNYOU_MICROSOFT_CLIENT_SECRET" secret:"true" help:"client secret of that app registration; optional: a Web platform registration needs one, a public client (loopback redirect) has none"`
	MicrosoftAuthority    string `env:"OWNYOU_MICROSOFT_AUTHORITY" envDefault:"https://login.microsoftonline.com/common" help:"Microsoft identity platform authority; common = personal and work or school accounts"`
	MicrosoftAuthURL      string `env:"OWNYOU_MICROSOFT_AUTH_URL" help:"override of the authority's sign-in endpoint (tests)"`
	MicrosoftTokenURL     string `env:"OWNYOU_MICROSOFT_TOKEN_URL" help:"override of the authority's token endpoint (tests)"`
	GraphEndpoint         string `env:"OWNYOU_GRAPH_ENDPOINT" help:"override of the Microsoft Graph root, default https://graph.microsoft.com/v1.0 (tests)"`
}

// sourcesAPI serves /api/v1/sources and the Google OAuth web flow.
type sourcesAPI struct {
	s *Server

	once   sync.Once
	box    *secretbox.Box
	boxErr error
}

// sourcesAPI returns the handlers of the sources area.
func (s *Server) sourcesAPI() *sourcesAPI { return &sourcesAPI{s: s} }

func (a *sourcesAPI) secretBox() (*secretbox.Box, error) {
	a.once.Do(func() { a.box, a.boxErr = secretbox.Load(a.s.cfg.Sources.SecretKey, a.s.cfg.DataDir) })
	return a.box, a.boxErr
}

// callbackURL is the OAuth redirect URI of a provider ("google",
// "microsoft"), which the user registers with it.
func (a *sourcesAPI) callbackURL(provider string) string {
	base := strings.TrimRight(a.s.cfg.Sources.PublicURL, "/")
	if base == "" {
		base = "http://" + a.s.Addr()
	}
	return base + "/api/v1/oauth/" + provider + "/callback"
}

func (a *sourcesAPI) oauthConfig() googleoauth.Config {
	c := a.s.cfg.Sources
	return googleoauth.Config{ClientID: c.GoogleClientID, ClientSecret: c.GoogleClientSecret,
		RedirectURL: a.callbackURL("google"), AuthURL: c.GoogleAuthURL, TokenURL: c.GoogleTokenURL}
}

func (a *sourcesAPI) microsoftConfig() msgraph.OAuthConfig {
	c := a.s.cfg.Sources
	return msgraph.OAuthConfig{ClientID: c.MicrosoftClientID, ClientSecret: c.MicrosoftClientSecret, Authority: c.MicrosoftAuthority,
		RedirectURL: a.callbackURL("microsoft"), AuthURL: c.MicrosoftAuthURL, TokenURL: c.MicrosoftTokenURL}
}

// providerInfo tells the Sources screen whether an OAuth provider is set up
// and which redirect URI to register with it.
type providerInfo struct {
	Configured  bool   `json:"configured"`
	RedirectURI string `json:"redirect_uri"`
}

// sourcesList is the reply of GET /api/v1/sources.
type sourcesList struct {
	Sources []store.Source `json:"sources"`
	Gmail   providerInfo   `json:"gmail"`
	Outlook providerInfo   `json:"outlook"`
}

// sourceView is a source as the API shows it, with its recent failures.
type sourceView struct {
	store.Source
	Failures []store.SourceFailure `json:"failures,omitempty"`
}

func (a *sourcesAPI) list(w http.ResponseWriter, r *http.Request) {
	ss, err := a.s.db.ListSources(r.Context())
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sourcesList{Sources: ss,
		Gmail:   providerInfo{Configured: a.oauthConfig().Enabled(), RedirectURI: a.callbackURL("google")},
		Outlook: providerInfo{Configured: a.microsoftConfig().Enabled(), RedirectURI: a.callbackURL("microsoft")}})
}

func (a *sourcesAPI) get(w http.ResponseWriter, r *http.Request) {
	src, err := a.s.db.GetSource(r.Context(), r.PathValue("id"))
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	fails, err := a.s.db.ListSourceFailures(r.Context(), src.ID, 100)
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sourceView{Source: src, Failures: fails})
}

// createSourceRequest is the body of POST /api/v1/sources (IMAP accounts;
// Gmail is connected through the OAuth flow).
type createSourceRequest struct {
	Kind     string            `json:"kind"`
	Name     string            `json:"name"`
	Host     string            `json:"host"`
	Port     int               `json:"port"`
	Security string            `json:"security"` // tls (default) | starttls | none
	Username string            `json:"username"`
	Auth     string            `json:"auth"`     // password (default) | xoauth2
	Password string            `json:"password"` // password or app password; stored encrypted
	OAuth    *imapOAuthRequest `json:"oauth"`    // with auth xoauth2; stored encrypted
	Folders  []string          `json:"folders"`
}

// imapOAuthRequest is what refreshing an IMAP XOAUTH2 grant needs (a
// refresh token with the provider's token URL and the OAuth client), or
// just an access token, which works until it expires.
type imapOAuthRequest struct {
	TokenURL     string   `json:"token_url"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	RefreshToken string   `json:"refresh_token"`
	AccessToken  string   `json:"access_token"`
	ExpiresIn    int64    `json:"expires_in"` // seconds the access token stays valid; 0 = unknown
	Scopes       []string `json:"scopes"`
}

// grant validates r and turns it into the stored grant.
func (r *imapOAuthRequest) grant(now time.Time) (googleoauth.Grant, []string) {
	var problems []string
	if r == nil {
		return googleoauth.Grant{}, []string{`auth "xoauth2" needs an "oauth" object with refresh_token, token_url and client_id (or an access_token)`}
	}
	if r.RefreshToken == "" && r.AccessToken == "" {
		problems = append(problems, "oauth needs a refresh_token (or, for a short test, an access_token)")
	}
	if r.RefreshToken != "" {
		if u, err := url.Parse(r.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, "oauth.token_url must be the provider's http(s) token endpoint")
		}
		if r.ClientID == "" {
			problems = append(problems, "oauth.client_id is required with a refresh_token")
		}
	}
	tok := &oauth2.Token{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, TokenType: "Bearer"}
	if r.AccessToken != "" && r.ExpiresIn > 0 {
		tok.Expiry = now.Add(time.Duration(r.ExpiresIn) * time.Second)
	}
	return googleoauth.Grant{TokenURL: r.TokenURL, ClientID: r.ClientID, ClientSecret: r.ClientSecret, Scopes: r.Scopes, Token: tok}, problems
}

func (a *sourcesAPI) create(w http.ResponseWriter, r *http.Request) {
	var req createSourceRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_request", "expected a JSON body: "+err.Error())
		return
	}
	switch req.Kind {
	case store.SourceGmail:
		writeError(w, r, http.StatusBadRequest, "use_oauth", "connect Gmail in the browser through GET /api/v1/oauth/google/start")
		return
	case store.SourceOutlook:
		writeError(w, r, http.StatusBadRequest, "use_oauth", "connect Outlook in the browser through GET /api/v1/oauth/microsoft/start")
		return
	case store.SourceIMAP:
	default:
		writeError(w, r, http.StatusBadRequest, "bad_kind", `kind must be "imap" (Gmail and Outlook connect through /api/v1/oauth/{google,microsoft}/start; files upload through /api/v1/imports)`)
		return
	}
	if req.Security == "" {
		req.Security = "tls"
	}
	if req.Port == 0 {
		req.Port = map[string]int{"tls": 993, "starttls": 143, "none": 143}[req.Security]
	}
	var problems []string
	if req.Host == "" || strings.ContainsAny(req.Host, " /:") {
		problems = append(problems, "host is required (a name, without port)")
	}
	if req.Port <= 0 || req.Port > 65535 {
		problems = append(problems, "port must be 1-65535")
	}
	if req.Security != "tls" && req.Security != "starttls" && req.Security != "none" {
		problems = append(problems, "security must be tls, starttls or none")
	}
	if req.Username == "" {
		problems = append(problems, "username is required (for OAuth, the mailbox address)")
	}
	cred, p := req.imapCredentials(time.Now())
	problems = append(problems, p...)
	if len(problems) > 0 {
		writeError(w, r, http.StatusBadRequest, "bad_request", strings.Join(problems, "; "))
		return
	}
	if len(req.Folders) == 0 {
		req.Folders = []string{"INBOX"}
	}
	box, err := a.secretBox()
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	id := newID("src")
	sealed, err := box.Seal(cred.secret, []byte(id))
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	conf := map[string]any{"host": req.Host, "port": req.Port, "security": req.Security, "username": req.Username, "folders": req.Folders}
	cred.apply(conf)
	cfg, _ := json.Marshal(conf)
	name := req.Name
	if name == "" {
		name = req.Username + "@" + req.Host
	}
	src, err := a.s.db.CreateSource(r.Context(), store.Source{ID: id, Kind: store.SourceIMAP, Account: req.Username + "@" + req.Host, Name: name, Config: cfg}, sealed)
	if errors.Is(err, store.ErrSourceExists) {
		writeError(w, r, http.StatusConflict, "exists", "this IMAP account is already connected")
		return
	}
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/sources/"+src.ID)
	writeJSON(w, http.StatusCreated, src)
}

// imapCredentials is an IMAP source's sign-in: the encrypted secret's
// plaintext and the config fields that describe it.
type imapCredentials struct {
	auth     string // password | xoauth2
	secret   []byte // the password, or a googleoauth.Grant as JSON
	tokenURL string
	clientID string
}

// apply sets the config fields that describe the credentials (never secrets).
func (c imapCredentials) apply(conf map[string]any) {
	conf["auth"] = c.auth
	delete(conf, "token_url")
	delete(conf, "client_id")
	if c.tokenURL != "" {
		conf["token_url"], conf["client_id"] = c.tokenURL, c.clientID
	}
}

// imapCredentials validates the request's auth fields.
func (req *createSourceRequest) imapCredentials(now time.Time) (imapCredentials, []string) {
	switch req.Auth {
	case "", "password":
		if req.Password == "" {
			return imapCredentials{}, []string{"password is required (or auth \"xoauth2\" with an oauth object)"}
		}
		return imapCredentials{auth: "password", secret: []byte(req.Password)}, nil
	case "xoauth2":
		g, problems := req.OAuth.grant(now)
		if len(problems) > 0 {
			return imapCredentials{}, problems
		}
		b, err := json.Marshal(g)
		if err != nil {
			return imapCredentials{}, []string{"oauth: " + err.Error()}
		}
		return imapCredentials{auth: "xoauth2", secret: b, tokenURL: g.TokenURL, clientID: g.ClientID}, nil
	default:
		return imapCredentials{}, []string{`auth must be "password" or "xoauth2"`}
	}
}

// credentials replaces an IMAP source's sign-in (POST
// /api/v1/sources/{id}/credentials, body: auth with password or oauth as
// for create): how a source in reconnect_needed is reconnected, or moved
// from a password to OAuth. The source becomes due for a sync now.
func (a *sourcesAPI) credentials(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req createSourceRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_request", "expected a JSON body: "+err.Error())
		return
	}
	src, err := a.s.db.GetSource(ctx, r.PathValue("id"))
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	if src.Kind != store.SourceIMAP {
		provider := map[string]string{store.SourceGmail: "google", store.SourceOutlook: "microsoft"}[src.Kind]
		writeError(w, r, http.StatusBadRequest, "use_oauth", "only IMAP sources take credentials here; reconnect through GET /api/v1/oauth/"+provider+"/start?source_id="+src.ID)
		return
	}
	cred, problems := req.imapCredentials(time.Now())
	if len(problems) > 0 {
		writeError(w, r, http.StatusBadRequest, "bad_request", strings.Join(problems, "; "))
		return
	}
	conf := map[string]any{}
	if err := json.Unmarshal(src.Config, &conf); err != nil || conf == nil {
		conf = map[string]any{}
	}
	cred.apply(conf)
	cfg, _ := json.Marshal(conf)
	box, err := a.secretBox()
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	sealed, err := box.Seal(cred.secret, []byte(src.ID))
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	src, err = a.s.db.ReplaceSourceCredentials(ctx, src.ID, cfg, sealed)
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, src)
}

func (a *sourcesAPI) sync(w http.ResponseWriter, r *http.Request) {
	full, _ := strconv.ParseBool(r.URL.Query().Get("full"))
	src, err := a.s.db.RequestSync(r.Context(), r.PathValue("id"), full)
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, src)
}

func (a *sourcesAPI) pause(w http.ResponseWriter, r *http.Request) {
	src, err := a.s.db.PauseSource(r.Context(), r.PathValue("id"))
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, src)
}

func (a *sourcesAPI) resume(w http.ResponseWriter, r *http.Request) {
	src, err := a.s.db.ResumeSource(r.Context(), r.PathValue("id"))
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, src)
}

// remove deletes a source; its mail stays unless ?delete_mail=true, which
// deletes the emails no other source or import holds.
func (a *sourcesAPI) remove(w http.ResponseWriter, r *http.Request) {
	purge, _ := strconv.ParseBool(r.URL.Query().Get("delete_mail"))
	n, err := a.s.db.DeleteSource(r.Context(), r.PathValue("id"), purge)
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "deleted_emails": n})
}

// googleStart begins the OAuth web flow (?source_id= reconnects an existing
// source) by redirecting the browser to Google's consent page.
func (a *sourcesAPI) googleStart(w http.ResponseWriter, r *http.Request) {
	oc := a.oauthConfig()
	if !oc.Enabled() {
		writeError(w, r, http.StatusServiceUnavailable, "google_not_configured",
			"Gmail is not configured: set OWNYOU_GOOGLE_CLIENT_ID and OWNYOU_GOOGLE_CLIENT_SECRET (a Google Cloud OAuth client of type web application whose redirect URI is "+oc.RedirectURL+")")
		return
	}
	state, verifier := newID("st"), oauth2.GenerateVerifier()
	if err := a.s.db.SaveOAuthState(r.Context(), state, "google", verifier, r.URL.Query().Get("source_id"), 15*time.Minute); err != nil {
		a.s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, oc.AuthCodeURL(state, verifier), http.StatusFound)
}

// googleCallback finishes Google's flow: the account's address comes from
// Gmail's profile.
func (a *sourcesAPI) googleCallback(w http.ResponseWriter, r *http.Request) {
	oc := a.oauthConfig()
	a.finishOAuth(w, r, oauthProvider{name: "google", title: "Google", kind: store.SourceGmail,
		exchange: func(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
			return oc.Exchange(ctx, nil, code, verifier)
		},
		account: func(ctx context.Context, tok *oauth2.Token) (string, error) { return a.gmailAccount(ctx, oc, tok) },
	})
}

// oauthProvider is what finishing a provider's web flow needs to know.
type oauthProvider struct {
	name, title, kind string // "google", "Google", store.SourceGmail
	exchange          func(ctx context.Context, code, verifier string) (*oauth2.Token, error)
	account           func(ctx context.Context, tok *oauth2.Token) (string, error)
}

// finishOAuth ends a provider's web flow at its callback: checks the
// one-time state (issued for this provider), exchanges the code (PKCE),
// learns the account's address, stores the token encrypted on a new or
// reconnected source (due for a sync now) and sends the browser back to the
// UI, with the reason when something failed.
func (a *sourcesAPI) finishOAuth(w http.ResponseWriter, r *http.Request, p oauthProvider) {
	ctx := r.Context()
	q := r.URL.Query()
	provider, verifier, reconnectID, err := a.s.db.TakeOAuthState(ctx, q.Get("state"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && provider != p.name) {
		writeError(w, r, http.StatusBadRequest, "bad_state", "this sign-in link expired or was already used; start again")
		return
	}
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	if e := q.Get("error"); e != "" {
		msg := p.title + " sign-in was not completed: " + e
		if d := q.Get("error_description"); d != "" {
			msg += " (" + d + ")"
		}
		a.doneRedirect(w, r, "", msg)
		return
	}
	tok, err := p.exchange(ctx, q.Get("code"), verifier)
	if err != nil {
		a.s.log.WarnContext(ctx, "oauth code exchange failed", "provider", p.name, "err", err)
		a.doneRedirect(w, r, "", p.title+" sign-in failed: "+err.Error())
		return
	}
	account, err := p.account(ctx, tok)
	if err == nil && account == "" {
		err = errors.New("the account has no mail address")
	}
	if err != nil {
		a.s.log.WarnContext(ctx, "reading the account failed", "provider", p.name, "err", err)
		a.doneRedirect(w, r, "", "could not read the "+p.title+" account: "+err.Error())
		return
	}
	id, err := a.saveOAuthSource(ctx, p.kind, reconnectID, account, tok)
	if err != nil {
		a.s.fail(w, r, err)
		return
	}
	a.doneRedirect(w, r, id, "")
}

func (a *sourcesAPI) gmailAccount(ctx context.Context, oc googleoauth.Config, tok *oauth2.Token) (string, error) {
	opts := []option.ClientOption{option.WithHTTPClient(oc.OAuth2().Client(ctx, tok))}
	if ep := a.s.cfg.Sources.GmailEndpoint; ep != "" {
		opts = append(opts, option.WithEndpoint(ep))
	}
	svc, err := gmail.NewService(ctx, opts...)
	if err != nil {
		return "", err
	}
	p, err := svc.Users.GetProfile("me").Context(ctx).Do()
	if err != nil {
		return "", err
	}
	return strings.ToLower(p.EmailAddress), nil
}

// saveOAuthSource stores tok, encrypted, on the source of kind for account
// — the one being reconnected, or a new one — which becomes due for a sync
// now, and returns its id.
func (a *sourcesAPI) saveOAuthSource(ctx context.Context, kind, reconnectID, account string, tok *oauth2.Token) (string, error) {
	box, err := a.secretBox()
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(tok)
	if err != nil {
		return "", fmt.Errorf("encode token: %w", err)
	}
	existing, err := a.s.db.FindSource(ctx, kind, account)
	switch {
	case err == nil:
		if reconnectID != "" && reconnectID != existing.ID {
			a.s.log.WarnContext(ctx, "reconnect signed in to another account; updating that account's source", "asked", reconnectID, "account", account)
		}
		sealed, err := box.Seal(plain, []byte(existing.ID))
		if err != nil {
			return "", err
		}
		return existing.ID, a.s.db.SetSourceSecret(ctx, existing.ID, sealed, true)
	case errors.Is(err, store.ErrNotFound):
		id := newID("src")
		sealed, err := box.Seal(plain, []byte(id))
		if err != nil {
			return "", err
		}
		_, err = a.s.db.CreateSource(ctx, store.Source{ID: id, Kind: kind, Account: account, Name: account}, sealed)
		return id, err
	default:
		return "", err
	}
}

func (a *sourcesAPI) doneRedirect(w http.ResponseWriter, r *http.Request, sourceID, problem string) {
	v := url.Values{}
	if sourceID != "" {
		v.Set("connected", sourceID)
	}
	if problem != "" {
		v.Set("error", problem)
	}
	target := a.s.cfg.Sources.UIRedirect
	if strings.Contains(target, "?") {
		target += "&" + v.Encode()
	} else {
		target += "?" + v.Encode()
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// microsoftStart begins the Microsoft identity platform's sign-in
// (?source_id= reconnects an existing source): PKCE, a one-time state, and
// the account picker.
func (a *sourcesAPI) microsoftStart(w http.ResponseWriter, r *http.Request) {
	oc := a.microsoftConfig()
	if !oc.Enabled() {
		writeError(w, r, http.StatusServiceUnavailable, "microsoft_not_configured",
			"Outlook is not configured: register an app in the Microsoft Entra admin center (Accounts in any organizational directory and personal Microsoft accounts; platform Web; redirect URI "+
				oc.RedirectURL+"), then set OWNYOU_MICROSOFT_CLIENT_ID and OWNYOU_MICROSOFT_CLIENT_SECRET for the gateway and the ingest service")
		return
	}
	state, verifier := newID("st"), oauth2.GenerateVerifier()
	if err := a.s.db.SaveOAuthState(r.Context(), state, "microsoft", verifier, r.URL.Query().Get("source_id"), 15*time.Minute); err != nil {
		a.s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, oc.AuthCodeURL(state, verifier), http.StatusFound)
}

// microsoftCallback finishes the Microsoft identity platform's flow: the
// account's address comes from Graph's /me.
func (a *sourcesAPI) microsoftCallback(w http.ResponseWriter, r *http.Request) {
	oc := a.microsoftConfig()
	a.finishOAuth(w, r, oauthProvider{name: "microsoft", title: "Microsoft", kind: store.SourceOutlook,
		exchange: func(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
			return oc.Exchange(ctx, nil, code, verifier)
		},
		account: func(ctx context.Context, tok *oauth2.Token) (string, error) {
			gc, err := msgraph.New(oc.OAuth2().Client(ctx, tok), msgraph.Options{Endpoint: a.s.cfg.Sources.GraphEndpoint, MaxAttempts: 3}, a.s.log)
			if err != nil {
				return "", err
			}
			me, err := gc.Me(ctx)
			return me.Address(), err
		},
	})
}
