// Package gmailfake is an in-process fake of the Gmail REST API (v1) for
// tests: users.getProfile, messages.list (spam and trash only with
// includeSpamTrash), messages.get (format=raw or minimal) and history.list
// with paging (messageAdded, messageDeleted, labelAdded and labelRemoved
// records, filtered by historyTypes), Bearer-token checks, a per-window
// quota that answers 403 userRateLimitExceeded like Google does, injected
// 429/5xx faults and expired history (404). It speaks the real wire format
// by marshalling the gmail/v1 types, so it is driven by the real client
// library. Safe for concurrent use.
package gmailfake

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	gmail "google.golang.org/api/gmail/v1"
)

// Quota costs of the methods the fake serves (Gmail API usage limits).
const (
	CostProfile = 1
	CostList    = 5
	CostGet     = 5
	CostHistory = 2
)

type message struct {
	id, threadID string
	labels       []string
	internal     time.Time
	raw          []byte
	historyID    uint64
}

// History record kinds, named as history.list's historyTypes values.
const (
	HistoryMessageAdded   = "messageAdded"
	HistoryMessageDeleted = "messageDeleted"
	HistoryLabelAdded     = "labelAdded"
	HistoryLabelRemoved   = "labelRemoved"
)

type historyRec struct {
	id      uint64
	kind    string
	msgID   string
	thread  string
	labels  []string // the message's labels after the change
	changed []string // labels added or removed
}

// Fault is an injected error response.
type Fault struct {
	Code   int    // HTTP status
	Reason string // Google error reason, e.g. "rateLimitExceeded", "backendError"
}

// Server is the fake Gmail API. Create it with New.
type Server struct {
	*httptest.Server
	Email string
	// Authorize, when set, validates the Bearer token of each request.
	Authorize func(token string) bool

	mu           sync.Mutex
	msgs         []*message // oldest first
	byID         map[string]*message
	history      []historyRec
	nextHistory  uint64
	historyFloor uint64 // history at or below this id is gone → 404
	nextFaults   []Fault
	msgFaults    map[string]Fault
	getFaults    []Fault
	quotaUnits   int
	quotaWindow  time.Duration
	windowStart  time.Time
	windowUsed   int
	// Calls counts requests by method name ("profile", "list", "get", "history").
	calls map[string]int
	// QuotaErrors counts 403 userRateLimitExceeded answers sent.
	quotaErrors int
	gets        map[string]int
	mux         *http.ServeMux
}

// New starts a fake mailbox for email.
func New(email string) *Server {
	s := &Server{Email: email, byID: map[string]*message{}, msgFaults: map[string]Fault{},
		calls: map[string]int{}, gets: map[string]int{}, nextHistory: 1000}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /gmail/v1/users/{user}/profile", s.profile)
	mux.HandleFunc("GET /gmail/v1/users/{user}/messages", s.list)
	mux.HandleFunc("GET /gmail/v1/users/{user}/messages/{id}", s.get)
	mux.HandleFunc("GET /gmail/v1/users/{user}/history", s.historyList)
	mux.HandleFunc("POST /batch/gmail/v1", s.batch)
	s.mux = mux
	s.Server = httptest.NewServer(mux)
	return s
}

// Endpoint is the base URL to pass to option.WithEndpoint.
func (s *Server) Endpoint() string { return s.URL + "/" }

// Add appends a message to the mailbox and records a messageAdded history
// entry; it returns the message id.
func (s *Server) Add(raw []byte, labels ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextHistory += 3
	id := fmt.Sprintf("%016x", 0x18c0000000000000+uint64(len(s.msgs)))
	m := &message{id: id, threadID: id, labels: clone(labels), raw: raw, historyID: s.nextHistory,
		internal: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(len(s.msgs)) * time.Minute)}
	s.msgs = append(s.msgs, m)
	s.byID[id] = m
	s.history = append(s.history, historyRec{id: s.nextHistory, kind: HistoryMessageAdded, msgID: id, thread: id, labels: clone(labels)})
	return id
}

// Delete removes a message permanently and records a messageDeleted history
// entry (its messageAdded entry stays, as in Gmail).
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byID[id]
	if !ok {
		return
	}
	delete(s.byID, id)
	for i, x := range s.msgs {
		if x.id == id {
			s.msgs = append(s.msgs[:i], s.msgs[i+1:]...)
			break
		}
	}
	s.nextHistory += 3
	s.history = append(s.history, historyRec{id: s.nextHistory, kind: HistoryMessageDeleted, msgID: id, thread: m.threadID})
}

// ModifyLabels adds and removes labels of message id, recording a
// labelAdded and/or labelRemoved history entry for the labels that really
// changed, like users.messages.modify. It reports whether id exists.
func (s *Server) ModifyLabels(id string, add, remove []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byID[id]
	if !ok {
		return false
	}
	var added, removed []string
	for _, l := range add {
		if !contains(m.labels, l) {
			m.labels = append(m.labels, l)
			added = append(added, l)
		}
	}
	for _, l := range remove {
		for i, x := range m.labels {
			if x == l {
				m.labels = append(m.labels[:i:i], m.labels[i+1:]...)
				removed = append(removed, l)
				break
			}
		}
	}
	if len(added) > 0 {
		s.nextHistory += 3
		s.history = append(s.history, historyRec{id: s.nextHistory, kind: HistoryLabelAdded, msgID: id, thread: m.threadID, labels: clone(m.labels), changed: added})
	}
	if len(removed) > 0 {
		s.nextHistory += 3
		s.history = append(s.history, historyRec{id: s.nextHistory, kind: HistoryLabelRemoved, msgID: id, thread: m.threadID, labels: clone(m.labels), changed: removed})
	}
	if len(added)+len(removed) > 0 {
		m.historyID = s.nextHistory
	}
	return true
}

func clone(l []string) []string { return append([]string{}, l...) }

// HistoryID is the mailbox's current history id.
func (s *Server) HistoryID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextHistory
}

// ExpireHistory drops all history up to now: history.list from any older
// start id answers 404, as Gmail does after about a week.
func (s *Server) ExpireHistory() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.historyFloor = s.nextHistory
	s.history = nil
}

// FailNext makes the next len(faults) requests fail with the given faults, in order.
func (s *Server) FailNext(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFaults = append(s.nextFaults, faults...)
}

// FailNextGets makes the next len(faults) messages.get calls fail, in order.
func (s *Server) FailNextGets(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.getFaults = append(s.getFaults, faults...)
}

// FailMessage makes every get of id fail with f until cleared with a zero Fault.
func (s *Server) FailMessage(id string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Code == 0 {
		delete(s.msgFaults, id)
		return
	}
	s.msgFaults[id] = f
}

// SetQuota enforces units per window per user, answering 403
// userRateLimitExceeded above it. Zero units disables the quota.
func (s *Server) SetQuota(units int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quotaUnits, s.quotaWindow, s.windowStart, s.windowUsed = units, window, time.Now(), 0
}

// Calls returns how many requests of a method ("profile", "list", "get",
// "history", "batch") were served; batched gets count as "get" too.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Gets returns how many times message id was fetched.
func (s *Server) Gets(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[id]
}

// QuotaErrors returns how many quota 403s were sent.
func (s *Server) QuotaErrors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quotaErrors
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

// writeError writes Google's JSON error envelope.
func writeError(w http.ResponseWriter, code int, reason, msg string) {
	status := map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}[code]
	domain := "global"
	if strings.Contains(reason, "RateLimit") || strings.Contains(reason, "rateLimit") {
		domain = "usageLimits"
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg, "status": status,
		"errors": []map[string]string{{"message": msg, "domain": domain, "reason": reason}},
	}})
}

// admit checks auth, injected faults and quota; it reports whether to go on.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, method string, cost int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	if u := r.PathValue("user"); u != "me" && u != s.Email {
		writeError(w, 400, "invalidArgument", "Invalid user id")
		return false
	}
	if s.Authorize != nil {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !s.Authorize(tok) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
			writeError(w, 401, "authError", "Request had invalid authentication credentials.")
			return false
		}
	}
	if len(s.nextFaults) > 0 {
		f := s.nextFaults[0]
		s.nextFaults = s.nextFaults[1:]
		writeError(w, f.Code, f.Reason, "injected fault")
		return false
	}
	if s.quotaUnits > 0 {
		now := time.Now()
		if now.Sub(s.windowStart) >= s.quotaWindow {
			s.windowStart, s.windowUsed = now, 0
		}
		if s.windowUsed+cost > s.quotaUnits {
			s.quotaErrors++
			writeError(w, 403, "userRateLimitExceeded", "User-rate limit exceeded. Retry after "+s.windowStart.Add(s.quotaWindow).UTC().Format(time.RFC3339))
			return false
		}
		s.windowUsed += cost
	}
	return true
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, "profile", CostProfile) {
		return
	}
	s.mu.Lock()
	p := &gmail.Profile{EmailAddress: s.Email, HistoryId: s.nextHistory, MessagesTotal: int64(len(s.msgs)), ThreadsTotal: int64(len(s.msgs))}
	s.mu.Unlock()
	writeJSON(w, p)
}

func pageParams(r *http.Request, def, max int) (offset, size int) {
	offset, _ = strconv.Atoi(r.URL.Query().Get("pageToken"))
	size, _ = strconv.Atoi(r.URL.Query().Get("maxResults"))
	if size <= 0 {
		size = def
	}
	if size > max {
		size = max
	}
	return offset, size
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, "list", CostList) {
		return
	}
	offset, size := pageParams(r, 100, 500)
	spamTrash := r.URL.Query().Get("includeSpamTrash") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	// Gmail lists newest first, and spam and trash only when asked to.
	var listed []*message
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if spamTrash || !contains(s.msgs[i].labels, "SPAM") && !contains(s.msgs[i].labels, "TRASH") {
			listed = append(listed, s.msgs[i])
		}
	}
	resp := &gmail.ListMessagesResponse{ResultSizeEstimate: int64(len(listed))}
	for _, m := range listed[min(offset, len(listed)):min(offset+size, len(listed))] {
		resp.Messages = append(resp.Messages, &gmail.Message{Id: m.id, ThreadId: m.threadID})
	}
	if offset+size < len(listed) {
		resp.NextPageToken = strconv.Itoa(offset + size)
	}
	writeJSON(w, resp)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, "get", CostGet) {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "raw" && format != "minimal" {
		writeError(w, 400, "invalidArgument", "fake supports format=raw and format=minimal only")
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets[id]++
	if len(s.getFaults) > 0 {
		f := s.getFaults[0]
		s.getFaults = s.getFaults[1:]
		writeError(w, f.Code, f.Reason, "injected get fault")
		return
	}
	if f, ok := s.msgFaults[id]; ok {
		writeError(w, f.Code, f.Reason, "injected message fault")
		return
	}
	m, ok := s.byID[id]
	if !ok {
		writeError(w, 404, "notFound", "Requested entity was not found.")
		return
	}
	msg := &gmail.Message{Id: m.id, ThreadId: m.threadID, LabelIds: m.labels, HistoryId: m.historyID,
		InternalDate: m.internal.UnixMilli(), SizeEstimate: int64(len(m.raw))}
	if format == "raw" {
		msg.Raw = base64.URLEncoding.EncodeToString(m.raw)
	}
	writeJSON(w, msg)
}

func (s *Server) historyList(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, "history", CostHistory) {
		return
	}
	start, err := strconv.ParseUint(r.URL.Query().Get("startHistoryId"), 10, 64)
	if err != nil {
		writeError(w, 400, "invalidArgument", "Invalid startHistoryId")
		return
	}
	types := r.URL.Query()["historyTypes"]
	for _, t := range types {
		if t != HistoryMessageAdded && t != HistoryMessageDeleted && t != HistoryLabelAdded && t != HistoryLabelRemoved {
			writeError(w, 400, "invalidArgument", "Invalid value for historyTypes: "+t)
			return
		}
	}
	offset, size := pageParams(r, 100, 500)
	s.mu.Lock()
	defer s.mu.Unlock()
	if start < s.historyFloor {
		writeError(w, 404, "notFound", "Requested entity was not found.")
		return
	}
	var recs []historyRec
	for _, h := range s.history {
		if h.id > start && (len(types) == 0 || contains(types, h.kind)) {
			recs = append(recs, h)
		}
	}
	resp := &gmail.ListHistoryResponse{HistoryId: s.nextHistory}
	for i := offset; i < len(recs) && i < offset+size; i++ {
		h := recs[i]
		msg := &gmail.Message{Id: h.msgID, ThreadId: h.thread, LabelIds: h.labels}
		rec := &gmail.History{Id: h.id, Messages: []*gmail.Message{{Id: h.msgID, ThreadId: h.thread}}}
		switch h.kind {
		case HistoryMessageAdded:
			rec.MessagesAdded = []*gmail.HistoryMessageAdded{{Message: msg}}
		case HistoryMessageDeleted:
			rec.MessagesDeleted = []*gmail.HistoryMessageDeleted{{Message: &gmail.Message{Id: h.msgID, ThreadId: h.thread}}}
		case HistoryLabelAdded:
			rec.LabelsAdded = []*gmail.HistoryLabelAdded{{LabelIds: h.changed, Message: msg}}
		case HistoryLabelRemoved:
			rec.LabelsRemoved = []*gmail.HistoryLabelRemoved{{LabelIds: h.changed, Message: msg}}
		}
		resp.History = append(resp.History, rec)
	}
	if offset+size < len(recs) {
		resp.NextPageToken = strconv.Itoa(offset + size)
	}
	writeJSON(w, resp)
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// batch serves Google's multipart/mixed batch protocol: each part is an
// application/http request run through the same handlers (auth, faults and
// quota apply per item), answered as a part with Content-ID
// <response-item-N>.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls["batch"]++
	s.mu.Unlock()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		writeError(w, 400, "invalidArgument", "batch needs multipart/mixed")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var out bytes.Buffer
	mw := multipart.NewWriter(&out)
	n := 0
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, 400, "invalidArgument", "bad batch body: "+err.Error())
			return
		}
		if n++; n > 100 {
			writeError(w, 400, "invalidArgument", "Too many requests in batch")
			return
		}
		cid := strings.Trim(part.Header.Get("Content-ID"), "<>")
		inner, err := http.ReadRequest(bufio.NewReader(part))
		if err != nil {
			writeError(w, 400, "invalidArgument", "bad batch item: "+err.Error())
			return
		}
		inner.Header.Set("Authorization", r.Header.Get("Authorization"))
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, inner.WithContext(r.Context()))
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", "application/http")
		h.Set("Content-ID", "<response-"+cid+">")
		pw, _ := mw.CreatePart(h)
		fmt.Fprintf(pw, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n\r\n", rec.Code, http.StatusText(rec.Code), rec.Header().Get("Content-Type"))
		pw.Write(rec.Body.Bytes())
	}
	mw.Close()
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.Write(out.Bytes())
}
