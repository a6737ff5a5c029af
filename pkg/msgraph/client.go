// Package msgraph is OwnYou's client of Microsoft Graph (v1.0) for reading
// one mailbox: the signed-in user, the mail folder tree, per-folder delta
// queries (@odata.nextLink / @odata.deltaLink paging, @removed entries) and
// each message's raw MIME. It keeps to Outlook's limits for one mailbox —
// at most Options.Concurrency requests at once (Exchange allows 4 per app
// and mailbox) and Options.RequestsPerSecond (10,000 per 10 minutes) — and
// retries throttling (429, 503 with Retry-After), server errors and
// transport failures with jittered backoff. It also holds the Microsoft
// identity platform's OAuth flow (oauth.go).
package msgraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/ownyou/home/pkg/googleoauth"
)

// DefaultEndpoint is Microsoft Graph's v1.0 root.
const DefaultEndpoint = "https://graph.microsoft.com/v1.0"

// ErrDeltaExpired means a delta or next link is no longer valid (HTTP 410):
// the folder's change tracking must start again with an initial round.
var ErrDeltaExpired = errors.New("graph delta token expired")

// ErrNotFound means the item does not exist (HTTP 404).
var ErrNotFound = errors.New("graph item not found")

// ErrTooLarge means a message's MIME is larger than Options.MaxMessageBytes.
var ErrTooLarge = errors.New("message larger than the size limit")

// Error is an error response from Graph: its HTTP status, its OData error
// code and message, and how long the server asked to wait.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("graph: HTTP %d", e.Status)
	}
	return fmt.Sprintf("graph: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Options tunes a Client; the zero value uses the defaults.
type Options struct {
	Endpoint          string        // Graph root; default DefaultEndpoint
	Concurrency       int           // requests in flight at once; default 4
	RequestsPerSecond float64       // default 15 (90% of 10,000 per 10 minutes)
	PageSize          int           // items per delta page (Prefer: odata.maxpagesize); default 100
	MaxAttempts       int           // tries per request; default 8
	BackoffInitial    time.Duration // default 1s
	BackoffMax        time.Duration // default 64s
	MaxMessageBytes   int64         // MIME larger than this is ErrTooLarge; default 25 MiB
}

func (o Options) withDefaults() Options {
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.RequestsPerSecond <= 0 {
		o.RequestsPerSecond = 15
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BackoffInitial <= 0 {
		o.BackoffInitial = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 64 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 25 << 20
	}
	return o
}

// Client reads one mailbox. It is safe for concurrent use; concurrent calls
// share its concurrency and rate limits.
type Client struct {
	http    *http.Client
	opt     Options
	base    *url.URL
	sem     chan struct{}
	limiter *rate.Limiter
	log     *slog.Logger
}

// New returns a client that sends requests through httpClient, which must
// authorize them (oauth2.NewClient over OAuthConfig.TokenSource). log may be nil.
func New(httpClient *http.Client, opt Options, log *slog.Logger) (*Client, error) {
	opt = opt.withDefaults()
	base, err := url.Parse(opt.Endpoint)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("graph endpoint %q is not an http(s) URL", opt.Endpoint)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{http: httpClient, opt: opt, base: base, sem: make(chan struct{}, opt.Concurrency),
		limiter: rate.NewLimiter(rate.Limit(opt.RequestsPerSecond), max(1, opt.Concurrency)), log: log}, nil
}

// User is the signed-in user.
type User struct {
	ID                string `json:"id"`
	DisplayName       string `json:"displayName"`
	Mail              string `json:"mail"`
	UserPrincipalName string `json:"userPrincipalName"`
}

// Address is the user's mail address: mail, or for accounts without one
// (some personal accounts) the user principal name.
func (u User) Address() string {
	if u.Mail != "" {
		return strings.ToLower(u.Mail)
	}
	return strings.ToLower(u.UserPrincipalName)
}

// Me returns the signed-in user (needs User.Read).
func (c *Client) Me(ctx context.Context) (User, error) {
	var u User
	err := c.getJSON(ctx, c.url("/me", url.Values{"$select": {"id,displayName,mail,userPrincipalName"}}), nil, &u)
	return u, err
}

// Folder is a mail folder. Path is its display name under its ancestors
// ("Projects/2026"); WellKnown is set for the folders Outlook names
// (inbox, sentitems, drafts, deleteditems, junkemail, archive).
type Folder struct {
	ID               string `json:"id"`
	DisplayName      string `json:"displayName"`
	ParentFolderID   string `json:"parentFolderId"`
	ChildFolderCount int    `json:"childFolderCount"`
	TotalItemCount   int    `json:"totalItemCount"`
	Path             string `json:"-"`
	WellKnown        string `json:"-"`
}

// WellKnownFolders are the folder names Graph resolves in
// /me/mailFolders/{name} that OwnYou maps to labels.
var WellKnownFolders = []string{"inbox", "sentitems", "drafts", "deleteditems", "junkemail", "archive"}

const folderSelect = "id,displayName,parentFolderId,childFolderCount,totalItemCount"

// Folders returns every (non-hidden) mail folder, children included, parents
// before children, with paths and well-known names.
func (c *Client) Folders(ctx context.Context) ([]Folder, error) {
	well := map[string]string{}
	for _, name := range WellKnownFolders {
		var f Folder
		err := c.getJSON(ctx, c.url("/me/mailFolders/"+name, url.Values{"$select": {"id"}}), nil, &f)
		if errors.Is(err, ErrNotFound) {
			continue // no archive folder, for one
		}
		if err != nil {
			return nil, fmt.Errorf("well-known folder %s: %w", name, err)
		}
		well[f.ID] = name
	}
	var out []Folder
	q := url.Values{"$select": {folderSelect}, "$top": {"100"}}
	type level struct {
		link string
		path string
	}
	queue := []level{{link: c.url("/me/mailFolders", q)}}
	for len(queue) > 0 {
		lv := queue[0]
		queue = queue[1:]
		for link := lv.link; link != ""; {
			var page struct {
				Value    []Folder `json:"value"`
				NextLink string   `json:"@odata.nextLink"`
			}
			if err := c.getJSON(ctx, link, nil, &page); err != nil {
				return nil, fmt.Errorf("list folders: %w", err)
			}
			for _, f := range page.Value {
				f.Path = f.DisplayName
				if lv.path != "" {
					f.Path = lv.path + "/" + f.DisplayName
				}
				f.WellKnown = well[f.ID]
				out = append(out, f)
				if f.ChildFolderCount > 0 {
					queue = append(queue, level{link: c.url("/me/mailFolders/"+url.PathEscape(f.ID)+"/childFolders", q), path: f.Path})
				}
			}
			link = page.NextLink
		}
	}
	return out, nil
}

// DeltaItem is one entry of a messages delta page: a message added to or
// changed in the folder, or (Removed set) one deleted or moved out of it.
type DeltaItem struct {
	ID                string    `json:"id"`
	ParentFolderID    string    `json:"parentFolderId"`
	ReceivedDateTime  time.Time `json:"receivedDateTime"`
	ConversationID    string    `json:"conversationId"`
	InternetMessageID string    `json:"internetMessageId"`
	Removed           *Removed  `json:"@removed,omitempty"`
}

// Removed is the @removed annotation of a delta entry.
type Removed struct {
	Reason string `json:"reason"`
}

// DeltaPage is one page of a delta round: NextLink when more pages follow,
// otherwise DeltaLink, the start of the next round.
type DeltaPage struct {
	Items     []DeltaItem `json:"value"`
	NextLink  string      `json:"@odata.nextLink"`
	DeltaLink string      `json:"@odata.deltaLink"`
}

// InitialDelta is the link that starts a folder's first delta round, which
// lists every message in it.
func (c *Client) InitialDelta(folderID string) string {
	return c.url("/me/mailFolders/"+url.PathEscape(folderID)+"/messages/delta",
		url.Values{"$select": {"id,parentFolderId,receivedDateTime,conversationId,internetMessageId"}})
}

// Delta fetches one delta page at link (InitialDelta, or a page's NextLink
// or DeltaLink). An expired link is ErrDeltaExpired.
func (c *Client) Delta(ctx context.Context, link string) (DeltaPage, error) {
	var p DeltaPage
	if err := c.checkLink(link); err != nil {
		return p, err
	}
	h := http.Header{}
	h.Add("Prefer", "odata.maxpagesize="+strconv.Itoa(c.opt.PageSize))
	err := c.getJSON(ctx, link, h, &p)
	if p.NextLink != "" && p.DeltaLink != "" {
		return DeltaPage{}, errors.New("graph delta page has both a next and a delta link")
	}
	return p, err
}

// MessageFolder returns the folder a message is in now; ErrNotFound when
// it was deleted.
func (c *Client) MessageFolder(ctx context.Context, id string) (string, error) {
	var m struct {
		ParentFolderID string `json:"parentFolderId"`
	}
	err := c.getJSON(ctx, c.url("/me/messages/"+url.PathEscape(id), url.Values{"$select": {"parentFolderId"}}), nil, &m)
	return m.ParentFolderID, err
}

// MIME returns a message's raw RFC 5322 content; ErrTooLarge beyond the
// size limit, ErrNotFound when it was deleted meanwhile.
func (c *Client) MIME(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := c.do(ctx, c.url("/me/messages/"+url.PathEscape(id)+"/$value", nil), nil, func(resp *http.Response) error {
		if resp.ContentLength > c.opt.MaxMessageBytes {
			return fmt.Errorf("%w: %d bytes", ErrTooLarge, resp.ContentLength)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, c.opt.MaxMessageBytes+1))
		if err != nil {
			return err
		}
		if int64(len(b)) > c.opt.MaxMessageBytes {
			return fmt.Errorf("%w: over %d bytes", ErrTooLarge, c.opt.MaxMessageBytes)
		}
		out = b
		return nil
	})
	return out, err
}

// url is the Graph link for path (its ids already escaped) and query q.
func (c *Client) url(path string, q url.Values) string {
	s := c.opt.Endpoint + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// checkLink refuses links that would send the mailbox's token elsewhere
// than the Graph endpoint.
func (c *Client) checkLink(link string) error {
	u, err := url.Parse(link)
	if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return fmt.Errorf("graph link %q is not on %s", link, c.base.Host)
	}
	return nil
}

func (c *Client) getJSON(ctx context.Context, link string, h http.Header, v any) error {
	return c.do(ctx, link, h, func(resp *http.Response) error {
		return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
	})
}

// do GETs link (with ImmutableId ids, so a message keeps its id when it
// moves between folders), retrying what can be retried, and hands a 2xx
// response to read.
func (c *Client) do(ctx context.Context, link string, h http.Header, read func(*http.Response) error) error {
	backoff := c.opt.BackoffInitial
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, link, h, read)
		if err == nil || !retryable(err) || attempt >= c.opt.MaxAttempts || ctx.Err() != nil {
			return err
		}
		d := backoff/2 + rand.N(backoff/2+1) // jitter: [b/2, b]
		var ge *Error
		if errors.As(err, &ge) && ge.RetryAfter > 0 {
			d = min(ge.RetryAfter, c.opt.BackoffMax)
		}
		backoff = min(2*backoff, c.opt.BackoffMax)
		c.log.DebugContext(ctx, "graph request backing off", "attempt", attempt, "delay", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, link string, h http.Header, read func(*http.Response) error) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	if err := c.limiter.Wait(ctx); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return err
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Add("Prefer", `IdType="ImmutableId"`)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, googleoauth.ErrReconnectNeeded) {
			return err
		}
		return fmt.Errorf("graph GET %s: %w", redact(link), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return read(resp)
	}
	ge := &Error{Status: resp.StatusCode}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body) == nil {
		ge.Code, ge.Message = body.Error.Code, body.Error.Message
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ge.RetryAfter = time.Duration(s) * time.Second
	}
	switch resp.StatusCode {
	case http.StatusGone:
		return fmt.Errorf("%w: %v", ErrDeltaExpired, ge)
	case http.StatusNotFound:
		return fmt.Errorf("%w: %v", ErrNotFound, ge)
	case http.StatusUnauthorized:
		// The token source renews expired tokens before sending; a token
		// refused anyway was revoked.
		return fmt.Errorf("%w: %v", googleoauth.ErrReconnectNeeded, ge)
	}
	return ge
}

// redact drops a link's query (skip and delta tokens) from error messages.
func redact(link string) string {
	if i := strings.IndexByte(link, '?'); i >= 0 {
		return link[:i]
	}
	return link
}

// retryable reports errors worth another attempt: throttling, server errors
// and transport failures.
func retryable(err error) bool {
	if errors.Is(err, googleoauth.ErrReconnectNeeded) || errors.Is(err, ErrDeltaExpired) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Status == http.StatusTooManyRequests || ge.Status >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}
