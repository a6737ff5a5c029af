// Package imapsync mirrors IMAP folders with github.com/emersion/go-imap/v2:
// password/app-password (LOGIN) or XOAUTH2 authentication, per-folder
// UIDVALIDITY/UID incremental sync, size-capped fetches, and per-message
// failure isolation. Persistence and publishing sit behind Sink.
package imapsync

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// ErrAuth means the server rejected the credentials; retrying will not help
// until the user fixes them.
var ErrAuth = errors.New("imap authentication failed")

// ErrTooLarge marks a message skipped because it exceeds Config.MaxSize.
var ErrTooLarge = errors.New("message exceeds size cap")

// Security is how the connection is protected.
type Security string

// Connection security modes.
const (
	SecurityTLS      Security = "tls"      // implicit TLS (port 993)
	SecurityStartTLS Security = "starttls" // STARTTLS upgrade (port 143)
	SecurityNone     Security = "none"     // plaintext; only for loopback test servers
)

// Config describes one IMAP account.
type Config struct {
	Addr     string   // host:port
	Security Security // default SecurityTLS
	Username string
	Password string // password or app password; ignored when Token is set
	// Token, when set, returns an OAuth access token for XOAUTH2.
	Token       func(ctx context.Context) (string, error)
	Folders     []string      // default ["INBOX"]
	BatchSize   int           // UIDs per FETCH; default 50
	MaxSize     int64         // per-message cap; default 25 MB
	DialTimeout time.Duration // default 30s
	TLSConfig   *tls.Config   // optional
}

func (c Config) withDefaults() Config {
	if c.Security == "" {
		c.Security = SecurityTLS
	}
	if len(c.Folders) == 0 {
		c.Folders = []string{"INBOX"}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 50
	}
	if c.MaxSize == 0 {
		c.MaxSize = 25 << 20
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 30 * time.Second
	}
	return c
}

// FolderCursor is the sync position in one folder.
type FolderCursor struct {
	UIDValidity uint32 `json:"uid_validity"`
	LastUID     uint32 `json:"last_uid"`
}

// Cursor is the persisted sync position of one IMAP source.
type Cursor struct {
	Folders map[string]FolderCursor `json:"folders,omitempty"`
}

// Fetched is one raw message fetched over IMAP.
type Fetched struct {
	Folder       string
	UIDValidity  uint32
	UID          uint32
	InternalDate time.Time
	Size         int64
	Raw          []byte
}

// Sink persists what Sync produces. Methods may be called repeatedly for
// the same message and must be idempotent.
type Sink interface {
	// Deliver stores and publishes one message; an error stops the run
	// without moving the cursor.
	Deliver(ctx context.Context, m *Fetched) error
	// Failed records a message that could not be fetched or is too large.
	Failed(ctx context.Context, folder string, uidValidity, uid uint32, err error) error
	// Retries lists UIDs recorded by Failed in folder (same UIDVALIDITY)
	// that are due for another try; permanent failures need not be listed.
	Retries(ctx context.Context, folder string, uidValidity uint32) ([]uint32, error)
	// Recovered clears a recorded failure after a successful retry.
	Recovered(ctx context.Context, folder string, uidValidity, uid uint32) error
	// SaveCursor persists the cursor after each batch.
	SaveCursor(ctx context.Context, c Cursor) error
	// Progress reports running totals; it doubles as the run's heartbeat.
	Progress(ctx context.Context, s Stats) error
}

// Stats are the totals of one Sync run.
type Stats struct {
	Folders   int `json:"folders"`
	Resets    int `json:"resets"` // folders resynced after a UIDVALIDITY change
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	Recovered int `json:"recovered"`
}

// Dial connects and authenticates. The caller closes the client.
func Dial(ctx context.Context, cfg Config) (*imapclient.Client, error) {
	cfg = cfg.withDefaults()
	opts := &imapclient.Options{TLSConfig: cfg.TLSConfig, Dialer: &net.Dialer{Timeout: cfg.DialTimeout}}
	var (
		c   *imapclient.Client
		err error
	)
	switch cfg.Security {
	case SecurityTLS:
		c, err = imapclient.DialTLS(cfg.Addr, opts)
	case SecurityStartTLS:
		c, err = imapclient.DialStartTLS(cfg.Addr, opts)
	case SecurityNone:
		c, err = imapclient.DialInsecure(cfg.Addr, opts)
	default:
		return nil, fmt.Errorf("imap: unknown security %q", cfg.Security)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.Addr, err)
	}
	// Unblock the connection if ctx ends mid-command.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("imap greeting: %w", err)
	}
	if cfg.Token != nil {
		tok, terr := cfg.Token(ctx)
		if terr != nil {
			c.Close()
			return nil, fmt.Errorf("imap oauth token: %w", terr)
		}
		err = c.Authenticate(NewXOAuth2Client(cfg.Username, tok))
	} else {
		err = c.Login(cfg.Username, cfg.Password).Wait()
	}
	if err != nil {
		c.Close()
		if errors.Is(err, ErrAuth) {
			return nil, err
		}
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil, fmt.Errorf("%w: %v", ErrAuth, err)
		}
		return nil, fmt.Errorf("imap login: %w", err)
	}
	return c, nil
}

// Sync connects, then brings every configured folder up to date from cur.
// The cursor is saved through the Sink after each batch; the returned
// Stats are the run's totals.
func Sync(ctx context.Context, cfg Config, cur Cursor, sink Sink, log *slog.Logger) (Stats, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var st Stats
	c, err := Dial(ctx, cfg)
	if err != nil {
		return st, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	next := Cursor{Folders: map[string]FolderCursor{}}
	for k, v := range cur.Folders {
		next.Folders[k] = v
	}
	for _, folder := range cfg.Folders {
		if err := syncFolder(ctx, c, cfg, folder, &next, sink, &st, log); err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			return st, fmt.Errorf("folder %s: %w", folder, err)
		}
		st.Folders++
	}
	if err := c.Logout().Wait(); err != nil {
		log.DebugContext(ctx, "imap logout", "err", err)
	}
	return st, nil
}

func syncFolder(ctx context.Context, c *imapclient.Client, cfg Config, folder string, cur *Cursor, sink Sink, st *Stats, log *slog.Logger) error {
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("examine: %w", err)
	}
	fc := cur.Folders[folder]
	if fc.UIDValidity != sel.UIDValidity {
		if fc.UIDValidity != 0 {
			// UIDs were renumbered: start over; dedupe makes it a no-op for known mail.
			log.InfoContext(ctx, "imap UIDVALIDITY changed; resyncing folder", "folder", folder, "old", fc.UIDValidity, "new", sel.UIDValidity)
			st.Resets++
		}
		fc = FolderCursor{UIDValidity: sel.UIDValidity}
		cur.Folders[folder] = fc
		if err := sink.SaveCursor(ctx, *cur); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
	}
	if err := retryFailed(ctx, c, cfg, folder, fc.UIDValidity, sink, st); err != nil {
		return err
	}
	if sel.NumMessages == 0 || (sel.UIDNext != 0 && uint32(sel.UIDNext) <= fc.LastUID+1) {
		return nil
	}
	var set imap.UIDSet
	set.AddRange(imap.UID(fc.LastUID+1), 0) // LastUID+1:*
	res, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("uid search: %w", err)
	}
	var uids []imap.UID
	for _, u := range res.AllUIDs() {
		// "n:*" always matches the highest UID, even when it is below n.
		if uint32(u) > fc.LastUID {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	for start := 0; start < len(uids); start += cfg.BatchSize {
		batch := uids[start:min(start+cfg.BatchSize, len(uids))]
		if err := fetchBatch(ctx, c, cfg, folder, fc.UIDValidity, batch, sink, st); err != nil {
			return err
		}
		fc.LastUID = uint32(batch[len(batch)-1])
		cur.Folders[folder] = fc
		if err := sink.SaveCursor(ctx, *cur); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		if err := sink.Progress(ctx, *st); err != nil {
			return fmt.Errorf("report progress: %w", err)
		}
	}
	return nil
}

// retryFailed refetches UIDs that failed in earlier runs; those delivered
// now are cleared, those failing again stay recorded.
func retryFailed(ctx context.Context, c *imapclient.Client, cfg Config, folder string, validity uint32, sink Sink, st *Stats) error {
	uids, err := sink.Retries(ctx, folder, validity)
	if err != nil {
		return fmt.Errorf("list retries: %w", err)
	}
	for start := 0; start < len(uids); start += cfg.BatchSize {
		var batch []imap.UID
		for _, u := range uids[start:min(start+cfg.BatchSize, len(uids))] {
			batch = append(batch, imap.UID(u))
		}
		before := st.Delivered
		delivered := map[uint32]bool{}
		if err := fetchBatchInto(ctx, c, cfg, folder, validity, batch, sink, st, delivered); err != nil {
			return err
		}
		for u := range delivered {
			if err := sink.Recovered(ctx, folder, validity, u); err != nil {
				return fmt.Errorf("clear failure: %w", err)
			}
		}
		st.Recovered += st.Delivered - before
	}
	return nil
}

func fetchBatch(ctx context.Context, c *imapclient.Client, cfg Config, folder string, validity uint32, batch []imap.UID, sink Sink, st *Stats) error {
	return fetchBatchInto(ctx, c, cfg, folder, validity, batch, sink, st, nil)
}

func fetchBatchInto(ctx context.Context, c *imapclient.Client, cfg Config, folder string, validity uint32, batch []imap.UID, sink Sink, st *Stats, delivered map[uint32]bool) error {
	// First sizes, so oversized messages are never downloaded.
	sizes, err := c.Fetch(imap.UIDSetNum(batch...), &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
	if err != nil {
		return fmt.Errorf("fetch sizes: %w", err)
	}
	meta := map[imap.UID]*imapclient.FetchMessageBuffer{}
	for _, m := range sizes {
		meta[m.UID] = m
	}
	var want []imap.UID
	for _, u := range batch {
		m, ok := meta[u]
		switch {
		case !ok:
			// Expunged between SEARCH and FETCH: nothing to import.
		case cfg.MaxSize > 0 && m.RFC822Size > cfg.MaxSize:
			if err := sink.Failed(ctx, folder, validity, uint32(u), fmt.Errorf("%w: %d bytes > cap %d", ErrTooLarge, m.RFC822Size, cfg.MaxSize)); err != nil {
				return fmt.Errorf("record failure: %w", err)
			}
			st.Failed++
		default:
			want = append(want, u)
		}
	}
	if len(want) == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := c.Fetch(imap.UIDSetNum(want...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	got := map[imap.UID]bool{}
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		buf, err := msg.Collect()
		if err != nil {
			cmd.Close()
			return fmt.Errorf("fetch body: %w", err)
		}
		raw := buf.FindBodySection(section)
		m := meta[buf.UID]
		if m == nil || raw == nil {
			continue
		}
		got[buf.UID] = true
		f := &Fetched{Folder: folder, UIDValidity: validity, UID: uint32(buf.UID), InternalDate: m.InternalDate.UTC(), Size: int64(len(raw)), Raw: raw}
		if err := sink.Deliver(ctx, f); err != nil {
			cmd.Close()
			return fmt.Errorf("deliver uid %d: %w", buf.UID, err)
		}
		st.Delivered++
		if delivered != nil {
			delivered[uint32(buf.UID)] = true
		}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("fetch body: %w", err)
	}
	for _, u := range want {
		if !got[u] {
			if err := sink.Failed(ctx, folder, validity, uint32(u), errors.New("server returned no body")); err != nil {
				return fmt.Errorf("record failure: %w", err)
			}
			st.Failed++
		}
	}
	return nil
}

// xoauth2 is the SASL XOAUTH2 mechanism used by Gmail and Outlook IMAP.
type xoauth2 struct{ user, token string }

// NewXOAuth2Client returns a SASL client for the XOAUTH2 mechanism.
func NewXOAuth2Client(user, token string) sasl.Client { return &xoauth2{user: user, token: token} }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next turns the server's error challenge (a JSON status) into ErrAuth.
// The exchange is abandoned rather than answered (go-imap would send "=",
// which servers reject), so the caller must close the connection.
func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	var st struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(challenge, &st) == nil && st.Status != "" {
		return nil, fmt.Errorf("%w: xoauth2 rejected (status %s)", ErrAuth, st.Status)
	}
	return nil, fmt.Errorf("%w: xoauth2: unexpected server challenge", ErrAuth)
}
