// Package graphfake is a fake Microsoft Graph (v1.0) mailbox for tests and
// benchmarks, speaking Graph's wire format for what OwnYou reads: /me, the
// mail folder tree (/me/mailFolders, childFolders, well-known names), per
// folder messages delta queries (@odata.nextLink with $skiptoken,
// @odata.deltaLink with $deltatoken, @removed entries, Prefer:
// odata.maxpagesize, HTTP 410 SyncStateNotFound for expired tokens), a
// message's parentFolderId and its MIME (/$value). Like Exchange, ids change
// when a message moves unless the request prefers IdType="ImmutableId"; more
// than Limit requests in flight, more than RequestsPerSecond, or a queued
// Throttle get 429 with Retry-After; a bearer token Authorize rejects gets
// 401. Safe for concurrent use.
package graphfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Server is the fake. Create it with New; Close it when done.
type Server struct {
	*httptest.Server
	// Authorize decides whether a bearer token is valid; nil accepts any
	// non-empty token.
	Authorize func(token string) bool
	// Limit is the requests served at once before 429 (Exchange: 4 per app
	// and mailbox); 0 = no limit.
	Limit int
	// Latency is added to every request (a network round trip).
	Latency time.Duration
	// DefaultPageSize is a delta page without Prefer: odata.maxpagesize (Graph: 10).
	DefaultPageSize int

	mu       sync.Mutex
	user     User
	folders  map[string]*folder // by id
	order    []string           // folder ids in creation order
	msgs     map[string]*message
	log      []change
	seq      int64
	epoch    int64 // tokens of an older epoch are expired
	rounds   map[string]*round
	nextID   int
	throttle []throttle
	limiter  *rate.Limiter
	inFlight int
	maxIn    int
	calls    map[string]int
}

// User is the fake's signed-in user.
type User struct{ ID, DisplayName, Mail, UserPrincipalName string }

type folder struct {
	id, name, parent, wellKnown string
}

type message struct {
	id, folder, conversation, internetID string
	received                             time.Time
	raw                                  []byte
	deleted                              bool
}

// change is one entry of the mailbox's change log: a message added (from
// ""), moved (from → to), updated (from == to) or deleted (to "").
type change struct {
	seq      int64
	msg      string
	from, to string
}

type round struct {
	folder string
	items  []string // message ids; removed ones marked in removed
	gone   map[string]bool
	next   int64 // the seq the round's delta link continues from
	epoch  int64
}

type throttle struct {
	status     int
	retryAfter int
}

// New returns a fake mailbox for address with the well-known folders
// Inbox, Sent Items, Drafts, Deleted Items, Junk Email and Archive.
func New(address string) *Server {
	s := &Server{
		user:    User{ID: "user-1", DisplayName: "Test User", Mail: address, UserPrincipalName: address},
		folders: map[string]*folder{}, msgs: map[string]*message{}, rounds: map[string]*round{},
		calls: map[string]int{}, DefaultPageSize: 10,
	}
	for _, f := range [][2]string{{"inbox", "Inbox"}, {"sentitems", "Sent Items"}, {"drafts", "Drafts"},
		{"deleteditems", "Deleted Items"}, {"junkemail", "Junk Email"}, {"archive", "Archive"}} {
		id := s.addFolderLocked("", f[1])
		s.folders[id].wellKnown = f[0]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1.0/me", s.me)
	mux.HandleFunc("GET /v1.0/me/mailFolders", s.listFolders)
	mux.HandleFunc("GET /v1.0/me/mailFolders/{id}", s.getFolder)
	mux.HandleFunc("GET /v1.0/me/mailFolders/{id}/childFolders", s.listFolders)
	mux.HandleFunc("GET /v1.0/me/mailFolders/{id}/messages/delta", s.delta)
	mux.HandleFunc("GET /v1.0/me/messages/{id}", s.getMessage)
	mux.HandleFunc("GET /v1.0/me/messages/{id}/{value}", s.getMIME)
	s.Server = httptest.NewServer(s.gate(mux))
	return s
}

// Endpoint is the fake's Graph root (…/v1.0).
func (s *Server) Endpoint() string { return s.URL + "/v1.0" }

// SetUser replaces the signed-in user.
func (s *Server) SetUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
}

// Folder returns the id of a well-known folder ("inbox", "archive", …) or
// of the folder whose path ("Projects/2026") matches.
func (s *Server) Folder(nameOrPath string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.order {
		f := s.folders[id]
		if f.wellKnown == nameOrPath || s.pathLocked(f) == nameOrPath {
			return id
		}
	}
	return ""
}

// AddFolder creates a folder under parent ("" = top level) and returns its id.
func (s *Server) AddFolder(parent, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFolderLocked(parent, name)
}

// DeleteFolder removes a folder and hard-deletes the messages in it.
func (s *Server) DeleteFolder(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.folder == id && !m.deleted {
			s.logLocked(m.id, m.folder, "")
			m.deleted = true
		}
	}
	delete(s.folders, id)
	s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
}

func (s *Server) addFolderLocked(parent, name string) string {
	s.nextID++
	id := fmt.Sprintf("AAMkFolder%04d=", s.nextID)
	s.folders[id] = &folder{id: id, name: name, parent: parent}
	s.order = append(s.order, id)
	return id
}

// Add stores a message (raw MIME) in a folder and returns its immutable id.
func (s *Server) Add(folderID string, raw []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.folders[folderID]; !ok {
		panic("graphfake: no folder " + folderID)
	}
	s.nextID++
	id := fmt.Sprintf("AAMkMsg%06d=", s.nextID)
	s.msgs[id] = &message{id: id, folder: folderID, conversation: fmt.Sprintf("AAQkConv%06d=", s.nextID),
		internetID: fmt.Sprintf("<msg-%d@graphfake.test>", s.nextID), received: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC).Add(time.Duration(s.nextID) * time.Minute), raw: raw}
	s.logLocked(id, "", folderID)
	return id
}

// Move moves a message to another folder (a delete in Outlook moves it to
// Deleted Items).
func (s *Server) Move(id, folderID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[id]
	s.logLocked(id, m.folder, folderID)
	m.folder = folderID
}

// Update records a change to a message that leaves it where it is (read
// state, flags, categories).
func (s *Server) Update(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[id]
	s.logLocked(id, m.folder, m.folder)
}

// Delete deletes a message permanently.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.msgs[id]
	s.logLocked(id, m.folder, "")
	m.deleted = true
}

// ExpireDeltaTokens makes every delta and next link issued so far answer
// 410 Gone, as Exchange does when a sync state is too old.
func (s *Server) ExpireDeltaTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
}

// Throttle makes the next n requests answer status (429 or 503) with a
// Retry-After of retryAfter seconds.
func (s *Server) Throttle(n, status, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.throttle = append(s.throttle, throttle{status, retryAfter})
	}
}

// SetRate limits the requests per second the fake serves before answering
// 429 (Outlook's 10,000 per 10 minutes is about 16.7); 0 = unlimited.
func (s *Server) SetRate(perSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		s.limiter = nil
		return
	}
	s.limiter = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
}

// Calls returns how many requests of a kind were served: "me", "folders",
// "delta", "message", "mime", "throttled".
func (s *Server) Calls(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[kind]
}

// MaxInFlight is the most requests the fake saw at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxIn
}

func (s *Server) logLocked(id, from, to string) {
	s.seq++
	s.log = append(s.log, change{seq: s.seq, msg: id, from: from, to: to})
}

func (s *Server) pathLocked(f *folder) string {
	if p, ok := s.folders[f.parent]; ok {
		return s.pathLocked(p) + "/" + f.name
	}
	return f.name
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]string{"date": time.Now().UTC().Format(time.RFC3339), "request-id": "fake"}}})
}

// gate applies authorization, throttling and the concurrency limit.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Latency > 0 {
			time.Sleep(s.Latency)
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" || (s.Authorize != nil && !s.Authorize(tok)) {
			graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
			return
		}
		s.mu.Lock()
		var th *throttle
		switch {
		case len(s.throttle) > 0:
			th = &s.throttle[0]
			s.throttle = s.throttle[1:]
		case s.Limit > 0 && s.inFlight >= s.Limit:
			th = &throttle{http.StatusTooManyRequests, 1}
		case s.limiter != nil && !s.limiter.Allow():
			th = &throttle{http.StatusTooManyRequests, 1}
		}
		if th != nil {
			s.calls["throttled"]++
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(th.retryAfter))
			if th.status == http.StatusTooManyRequests {
				graphError(w, th.status, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
			} else {
				graphError(w, th.status, "ServiceUnavailable", "The service is temporarily unavailable.")
			}
			return
		}
		s.inFlight++
		s.maxIn = max(s.maxIn, s.inFlight)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	_ = json.NewEncoder(w).Encode(v)
}

func immutable(r *http.Request) bool {
	for _, p := range r.Header.Values("Prefer") {
		if strings.Contains(p, `IdType="ImmutableId"`) {
			return true
		}
	}
	return false
}

// exposedID is the id a client sees: stable with ImmutableId, otherwise
// tied to the folder, so it changes when the message moves.
func exposedID(m *message, imm bool) string {
	if imm {
		return m.id
	}
	return m.id + "." + strings.TrimSuffix(m.folder, "=")
}

// lookup finds a message by either kind of id; a folder-bound id of a
// message that has since moved is not found, as in Exchange.
func (s *Server) lookup(id string) *message {
	base, folderPart, bound := strings.Cut(id, ".")
	m := s.msgs[base]
	if m == nil || m.deleted || (bound && strings.TrimSuffix(m.folder, "=") != folderPart) {
		return nil
	}
	return m
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls["me"]++
	u := s.user
	s.mu.Unlock()
	writeJSON(w, map[string]any{"@odata.context": s.Endpoint() + "/$metadata#users/$entity",
		"id": u.ID, "displayName": u.DisplayName, "mail": nilIfEmpty(u.Mail), "userPrincipalName": u.UserPrincipalName})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) folderJSON(f *folder) map[string]any {
	n, total := 0, 0
	for _, c := range s.folders {
		if c.parent == f.id {
			n++
		}
	}
	for _, m := range s.msgs {
		if m.folder == f.id && !m.deleted {
			total++
		}
	}
	return map[string]any{"id": f.id, "displayName": f.name, "parentFolderId": nilIfEmpty(f.parent), "childFolderCount": n,
		"unreadItemCount": 0, "totalItemCount": total, "isHidden": false}
}

func (s *Server) resolveFolder(id string) *folder {
	if f, ok := s.folders[id]; ok {
		return f
	}
	for _, f := range s.folders {
		if f.wellKnown != "" && strings.EqualFold(f.wellKnown, id) {
			return f
		}
	}
	return nil
}

func (s *Server) getFolder(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["folders"]++
	f := s.resolveFolder(r.PathValue("id"))
	if f == nil {
		graphError(w, http.StatusNotFound, "ErrorFolderNotFound", "The specified folder could not be found in the store.")
		return
	}
	writeJSON(w, s.folderJSON(f))
}

// listFolders pages top-level folders or a folder's children ($top, $skip).
func (s *Server) listFolders(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["folders"]++
	parent := ""
	if id := r.PathValue("id"); id != "" {
		f := s.resolveFolder(id)
		if f == nil {
			graphError(w, http.StatusNotFound, "ErrorFolderNotFound", "The specified folder could not be found in the store.")
			return
		}
		parent = f.id
	}
	var all []map[string]any
	for _, id := range s.order {
		if f := s.folders[id]; f.parent == parent {
			all = append(all, s.folderJSON(f))
		}
	}
	top, _ := strconv.Atoi(r.URL.Query().Get("$top"))
	if top <= 0 {
		top = 10
	}
	skip, _ := strconv.Atoi(r.URL.Query().Get("$skip"))
	end := min(len(all), skip+top)
	page := map[string]any{"value": all[min(skip, len(all)):end]}
	if end < len(all) {
		q := r.URL.Query()
		q.Set("$skip", strconv.Itoa(end))
		page["@odata.nextLink"] = s.URL + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, page)
}

type token struct {
	Round string `json:"r,omitempty"` // skip token: the round being paged
	Off   int    `json:"o,omitempty"`
	Seq   int64  `json:"s,omitempty"` // delta token: changes after Seq
	Epoch int64  `json:"e"`
}

func encodeToken(t token) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (token, bool) {
	var t token
	b, err := base64.RawURLEncoding.DecodeString(s)
	return t, err == nil && json.Unmarshal(b, &t) == nil
}

func pageSize(r *http.Request, def int) int {
	for _, p := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(p, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "odata.maxpagesize="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					return min(n, 1000)
				}
			}
		}
	}
	return def
}

// delta serves a round of a folder's messages delta: a fresh round (no
// token: every message in the folder; $deltatoken: what changed since),
// or the next page of a round ($skiptoken).
func (s *Server) delta(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["delta"]++
	f := s.resolveFolder(r.PathValue("id"))
	if f == nil {
		graphError(w, http.StatusNotFound, "ErrorFolderNotFound", "The specified folder could not be found in the store.")
		return
	}
	q := r.URL.Query()
	var rd *round
	var off int
	switch {
	case q.Get("$skiptoken") != "":
		t, ok := decodeToken(q.Get("$skiptoken"))
		if ok && t.Epoch == s.epoch {
			rd, off = s.rounds[t.Round], t.Off
		}
		if rd == nil || rd.folder != f.id {
			graphError(w, http.StatusGone, "SyncStateNotFound", "The sync state generation is not found.")
			return
		}
	case q.Get("$deltatoken") != "":
		t, ok := decodeToken(q.Get("$deltatoken"))
		if !ok || t.Epoch != s.epoch {
			graphError(w, http.StatusGone, "SyncStateNotFound", "The sync state generation is not found.")
			return
		}
		rd = s.changesSince(f.id, t.Seq)
	default:
		rd = &round{folder: f.id, gone: map[string]bool{}, next: s.seq, epoch: s.epoch}
		ids := []string{}
		for id, m := range s.msgs {
			if m.folder == f.id && !m.deleted {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		rd.items = ids
	}
	if q.Get("$skiptoken") == "" {
		s.nextID++
		key := strconv.Itoa(s.nextID)
		s.rounds[key] = rd
		q.Set("$skiptoken", encodeToken(token{Round: key, Epoch: s.epoch}))
	}
	n := pageSize(r, s.DefaultPageSize)
	end := min(len(rd.items), off+n)
	imm := immutable(r)
	value := []map[string]any{}
	for _, id := range rd.items[off:end] {
		m := s.msgs[id]
		if rd.gone[id] || m.deleted || m.folder != f.id {
			value = append(value, map[string]any{"@odata.type": "#microsoft.graph.message", "id": exposedID(m, imm), "@removed": map[string]string{"reason": "deleted"}})
			continue
		}
		value = append(value, map[string]any{"@odata.type": "#microsoft.graph.message", "@odata.etag": fmt.Sprintf("W/\"%d\"", s.seq),
			"id": exposedID(m, imm), "parentFolderId": m.folder, "receivedDateTime": m.received.Format("2006-01-02T15:04:05Z"),
			"conversationId": m.conversation, "internetMessageId": m.internetID})
	}
	page := map[string]any{"@odata.context": s.Endpoint() + "/$metadata#Collection(message)", "value": value}
	base := s.Endpoint() + "/me/mailFolders/" + f.id + "/messages/delta?"
	if end < len(rd.items) {
		t, _ := decodeToken(q.Get("$skiptoken"))
		t.Off = end
		page["@odata.nextLink"] = base + "$skiptoken=" + encodeToken(t)
	} else {
		page["@odata.deltaLink"] = base + "$deltatoken=" + encodeToken(token{Seq: rd.next, Epoch: rd.epoch})
	}
	writeJSON(w, page)
}

// changesSince is the round of a folder's net changes after seq: messages
// now in the folder that were added or changed, and messages that left it
// (deleted or moved away).
func (s *Server) changesSince(folderID string, seq int64) *round {
	rd := &round{folder: folderID, gone: map[string]bool{}, next: s.seq, epoch: s.epoch}
	seen := map[string]bool{}
	for _, c := range s.log {
		if c.seq <= seq || (c.from != folderID && c.to != folderID) || seen[c.msg] {
			continue
		}
		seen[c.msg] = true
		m := s.msgs[c.msg]
		if m.deleted || m.folder != folderID {
			if c.from == "" && c.to == folderID {
				continue // added and gone again since seq: nothing to tell
			}
			rd.gone[c.msg] = true
		}
		rd.items = append(rd.items, c.msg)
	}
	return rd
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["message"]++
	m := s.lookup(r.PathValue("id"))
	if m == nil {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	writeJSON(w, map[string]any{"id": exposedID(m, immutable(r)), "parentFolderId": m.folder})
}

func (s *Server) getMIME(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("value") != "$value" {
		graphError(w, http.StatusBadRequest, "BadRequest", "Unsupported segment "+r.PathValue("value"))
		return
	}
	s.mu.Lock()
	s.calls["mime"]++
	m := s.lookup(r.PathValue("id"))
	var raw []byte
	if m != nil {
		raw = m.raw
	}
	s.mu.Unlock()
	if m == nil {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	_, _ = w.Write(raw)
}
