package gmailsync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/gmailfake"
	"github.com/ownyou/home/pkg/googleoauth"
	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"golang.org/x/oauth2"
)

// memSink is an in-memory Sink recording everything the engine does.
type memSink struct {
	mu         sync.Mutex
	delivered  map[string]int
	failed     map[string]string
	cursors    []Cursor
	progress   int
	deliverErr error
	labels     map[string][]string // last Relabeled call per id
	deleted    map[string]int
	listed     map[string]uint64 // last full sync that listed a delivered id
}

func newMemSink() *memSink {
	return &memSink{delivered: map[string]int{}, failed: map[string]string{}, labels: map[string][]string{}, deleted: map[string]int{}, listed: map[string]uint64{}}
}

func (m *memSink) Deliver(_ context.Context, f *Fetched) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deliverErr != nil {
		return m.deliverErr
	}
	if len(f.Raw) == 0 || f.InternalDate.IsZero() {
		return fmt.Errorf("bad fetched message %+v", f)
	}
	m.delivered[f.ID]++
	return nil
}
func (m *memSink) Failed(_ context.Context, id string, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed[id] = err.Error()
	return nil
}
func (m *memSink) Retries(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.failed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}
func (m *memSink) Recovered(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failed, id)
	return nil
}
func (m *memSink) Relabeled(_ context.Context, id string, labels []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.labels[id] = labels
	return nil
}
func (m *memSink) Deleted(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleted[id]++
	return nil
}
func (m *memSink) Listed(_ context.Context, sync uint64, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if m.delivered[id] > 0 {
			m.listed[id] = sync
		}
	}
	return nil
}
func (m *memSink) Unlisted(_ context.Context, sync uint64) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.delivered {
		if m.listed[id] != sync && m.deleted[id] == 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}
func (m *memSink) SaveCursor(_ context.Context, c Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursors = append(m.cursors, c)
	return nil
}
func (m *memSink) Progress(context.Context, Stats) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.progress++
	return nil
}
func (m *memSink) last() Cursor {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[len(m.cursors)-1]
}
func (m *memSink) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.delivered)
}

type harness struct {
	gm    *gmailfake.Server
	oauth *oauthfake.Server
	sink  *memSink
	eng   *Engine
	saved []*oauth2.Token
}

func fastConfig() Config {
	return Config{Concurrency: 4, QuotaPerMinute: 6_000_000, PageSize: 7, MaxAttempts: 6, BackoffInitial: time.Millisecond, BackoffMax: 20 * time.Millisecond}
}

// newHarness wires the real gmail client through a real OAuth token source
// (refreshing against the fake token endpoint) to the fake Gmail server.
func newHarness(t *testing.T, n int, cfg Config) *harness {
	t.Helper()
	h := &harness{gm: gmailfake.New("user@example.com"), oauth: oauthfake.New("cid", "secret"), sink: newMemSink()}
	t.Cleanup(h.gm.Close)
	t.Cleanup(h.oauth.Close)
	h.gm.Authorize = h.oauth.ValidAccess
	for i := 0; i < n; i++ {
		h.gm.Add(mail(i), "INBOX")
	}
	oc := googleoauth.Config{ClientID: "cid", ClientSecret: "secret", AuthURL: h.oauth.AuthURL(), TokenURL: h.oauth.TokenURL()}
	ts := oc.TokenSource(context.Background(), nil, &oauth2.Token{RefreshToken: h.oauth.IssueRefreshToken()},
		func(_ context.Context, tok *oauth2.Token) error { h.saved = append(h.saved, tok); return nil })
	eng, err := New(context.Background(), oauth2.NewClient(context.Background(), ts), h.gm.Endpoint(), cfg, h.sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	return h
}

func mail(i int) []byte {
	return []byte(fmt.Sprintf("From: a@example.com\r\nTo: b@example.com\r\nSubject: mail %d\r\nMessage-ID: <m%d@example.com>\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\nbody %d\r\n", i, i, i))
}

func TestFullSyncFetchesEverythingAndSetsHistoryCursor(t *testing.T) {
	h := newHarness(t, 30, fastConfig())
	startHistory := h.gm.HistoryID()
	st, err := h.eng.Sync(context.Background(), Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	if h.sink.count() != 30 || st.Delivered != 30 || st.Mode != "full" {
		t.Fatalf("delivered %d (stats %+v), want 30 full", h.sink.count(), st)
	}
	if got := h.sink.last(); got.HistoryID != startHistory || got.Full != nil {
		t.Fatalf("final cursor %+v, want history %d", got, startHistory)
	}
	if first := h.sink.cursors[0]; first.Full == nil || first.Full.StartHistoryID != startHistory {
		t.Fatalf("history id not recorded before listing: %+v", first)
	}
	if h.gm.Calls("list") != 5 || h.sink.progress != 5 {
		t.Fatalf("list calls %d progress %d, want 5 pages of 7", h.gm.Calls("list"), h.sink.progress)
	}
	if len(h.saved) == 0 {
		t.Fatal("refreshed OAuth token was not persisted")
	}
}

func TestIncrementalSyncFetchesOnlyNewMessages(t *testing.T) {
	h := newHarness(t, 10, fastConfig())
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	var newIDs []string
	for i := 10; i < 25; i++ {
		newIDs = append(newIDs, h.gm.Add(mail(i)))
	}
	gets := h.gm.Calls("get")
	st, err := h.eng.Sync(context.Background(), h.sink.last())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "incremental" || st.Delivered != 15 || h.gm.Calls("get")-gets != 15 {
		t.Fatalf("stats %+v, gets %d: want 15 new via incremental", st, h.gm.Calls("get")-gets)
	}
	if h.sink.last().HistoryID != h.gm.HistoryID() {
		t.Fatalf("cursor %d, want %d", h.sink.last().HistoryID, h.gm.HistoryID())
	}
	if h.gm.Calls("history") != 3 {
		t.Fatalf("history pages = %d, want 3 (15 records / 7)", h.gm.Calls("history"))
	}
	// Nothing new: one history call, no gets.
	gets = h.gm.Calls("get")
	if st, err := h.eng.Sync(context.Background(), h.sink.last()); err != nil || st.Delivered != 0 || h.gm.Calls("get") != gets {
		t.Fatalf("idle sync: %+v %v", st, err)
	}
}

func TestExpiredHistoryFallsBackToFullSync(t *testing.T) {
	h := newHarness(t, 5, fastConfig())
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	old := h.sink.last()
	h.gm.Add(mail(99))
	h.gm.ExpireHistory()
	st, err := h.eng.Sync(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	if !st.FellBack || st.Mode != "full" || h.sink.count() != 6 {
		t.Fatalf("stats %+v, delivered %d: want fallback full sync of 6", st, h.sink.count())
	}
	if h.sink.last().HistoryID != h.gm.HistoryID() {
		t.Fatal("cursor not reset to the new history id")
	}
}

func TestFullSyncAfterExpiredHistoryMirrorsDeletionsAndTrash(t *testing.T) {
	h := newHarness(t, 0, fastConfig())
	var ids []string
	for i := range 10 {
		ids = append(ids, h.gm.Add(mail(i), "INBOX"))
	}
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	old := h.sink.last()
	// While history is lost: one message is deleted and two are trashed
	// (outside the listing without spam and trash); one of those can't be
	// checked for now.
	gone, trashed, flaky := ids[2], ids[5], ids[8]
	h.gm.Delete(gone)
	h.gm.ModifyLabels(trashed, []string{"TRASH"}, []string{"INBOX"})
	h.gm.ModifyLabels(flaky, []string{"TRASH"}, []string{"INBOX"})
	h.gm.ExpireHistory()
	h.gm.FailMessage(flaky, gmailfake.Fault{Code: 500, Reason: "backendError"})
	st, err := h.eng.Sync(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	if !st.FellBack || st.Deleted != 1 || st.Relabeled != 1 {
		t.Errorf("stats %+v: want a fallback full sync with one deletion and one relabel", st)
	}
	if h.sink.deleted[gone] != 1 || len(h.sink.deleted) != 1 {
		t.Errorf("deleted %v, want only %s", h.sink.deleted, gone)
	}
	if got := fmt.Sprint(h.sink.labels[trashed]); got != "[TRASH]" {
		t.Errorf("labels of the trashed message %s, want [TRASH]", got)
	}
	if h.sink.last().HistoryID != h.gm.HistoryID() {
		t.Error("an unchecked message kept the cursor from turning incremental")
	}
	// The next full sync checks again the one left unchecked (and, still
	// unlisted, the trashed one) and marks neither deleted.
	h.gm.FailMessage(flaky, gmailfake.Fault{})
	gets := h.gm.Gets(flaky)
	h.gm.Add(mail(10), "INBOX")
	h.gm.ExpireHistory()
	if st, err = h.eng.Sync(context.Background(), h.sink.last()); err != nil || st.Deleted != 0 || h.gm.Gets(flaky) <= gets {
		t.Errorf("second full sync: %+v %v, %d gets of the unchecked message: want it checked and kept", st, err, h.gm.Gets(flaky)-gets)
	}
	if h.sink.deleted[flaky] != 0 {
		t.Error("a message Gmail still has was marked deleted")
	}
}

func TestThrottlingAndServerErrorsAreRetried(t *testing.T) {
	tests := []struct {
		name   string
		faults []gmailfake.Fault
	}{
		{"403 userRateLimitExceeded is retried", []gmailfake.Fault{{Code: 403, Reason: "userRateLimitExceeded"}, {Code: 403, Reason: "userRateLimitExceeded"}}},
		{"403 rateLimitExceeded is retried", []gmailfake.Fault{{Code: 403, Reason: "rateLimitExceeded"}}},
		{"429 is retried", []gmailfake.Fault{{Code: 429, Reason: "rateLimitExceeded"}, {Code: 429, Reason: "rateLimitExceeded"}}},
		{"500 and 503 are retried", []gmailfake.Fault{{Code: 500, Reason: "backendError"}, {Code: 503, Reason: "backendError"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 12, fastConfig())
			h.gm.FailNext(tc.faults...)
			st, err := h.eng.Sync(context.Background(), Cursor{})
			if err != nil {
				t.Fatal(err)
			}
			if h.sink.count() != 12 || st.Failed != 0 {
				t.Fatalf("delivered %d failed %d, want all 12", h.sink.count(), st.Failed)
			}
		})
	}
}

func TestForbiddenWithoutRateLimitStopsTheRun(t *testing.T) {
	h := newHarness(t, 3, fastConfig())
	h.gm.FailNext(gmailfake.Fault{Code: 403, Reason: "insufficientPermissions"})
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err == nil {
		t.Fatal("want error for 403 insufficientPermissions")
	}
}

func TestPacingStaysUnderQuota(t *testing.T) {
	cfg := fastConfig()
	// Fake quota 100 units per 250 ms = 24,000/min; the engine paces at 18,000/min.
	cfg.QuotaPerMinute = 18000
	cfg.MaxAttempts, cfg.BackoffMax = 30, 50*time.Millisecond
	h := newHarness(t, 40, cfg)
	h.gm.SetQuota(100, 250*time.Millisecond)
	start := time.Now()
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	if h.sink.count() != 40 {
		t.Fatalf("delivered %d", h.sink.count())
	}
	// 40 gets + 6 lists + profile = 231 units at 300 units/s, minus the burst.
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("finished in %v: not paced", el)
	}
	if q := h.gm.QuotaErrors(); q > 2 {
		t.Fatalf("%d quota errors despite pacing", q)
	}
}

func TestUnpacedBurstHitsQuotaAndStillCompletes(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxAttempts, cfg.BackoffMax = 30, 50*time.Millisecond
	h := newHarness(t, 40, cfg)
	h.gm.SetQuota(60, 100*time.Millisecond)
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	if h.gm.QuotaErrors() == 0 {
		t.Fatal("quota never hit: test proves nothing")
	}
	if h.sink.count() != 40 {
		t.Fatalf("delivered %d, want 40 after backoff", h.sink.count())
	}
}

func TestFailingMessageDoesNotBlockCursorAndIsRetriedLater(t *testing.T) {
	h := newHarness(t, 10, fastConfig())
	bad := h.gm.Add(mail(50))
	h.gm.FailMessage(bad, gmailfake.Fault{Code: 500, Reason: "backendError"})
	st, err := h.eng.Sync(context.Background(), Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 1 || h.sink.count() != 10 || h.sink.failed[bad] == "" {
		t.Fatalf("stats %+v failed %v", st, h.sink.failed)
	}
	if h.sink.last().HistoryID == 0 {
		t.Fatal("cursor blocked by one failing message")
	}
	h.gm.FailMessage(bad, gmailfake.Fault{})
	st, err = h.eng.Sync(context.Background(), h.sink.last())
	if err != nil {
		t.Fatal(err)
	}
	if st.Recovered != 1 || h.sink.delivered[bad] != 1 || len(h.sink.failed) != 0 {
		t.Fatalf("retry: stats %+v delivered %d failed %v", st, h.sink.delivered[bad], h.sink.failed)
	}
}

func TestDeletedMessageIsSkipped(t *testing.T) {
	h := newHarness(t, 3, fastConfig())
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	gone := h.gm.Add(mail(7))
	h.gm.Delete(gone)
	st, err := h.eng.Sync(context.Background(), h.sink.last())
	if err != nil || st.Skipped != 1 || st.Failed != 0 {
		t.Fatalf("stats %+v err %v, want one skipped", st, err)
	}
}

func TestIncrementalMirrorsLabelChangesAndDeletions(t *testing.T) {
	h := newHarness(t, 0, fastConfig())
	keep := h.gm.Add(mail(1), "INBOX", "UNREAD")
	gone := h.gm.Add(mail(2), "INBOX")
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	h.gm.ModifyLabels(keep, []string{"STARRED", "Label_7"}, []string{"UNREAD"})
	h.gm.ModifyLabels(keep, nil, []string{"Label_7"})
	h.gm.Delete(gone)
	st, err := h.eng.Sync(context.Background(), h.sink.last())
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(h.sink.labels[keep]); got != "[INBOX STARRED]" {
		t.Errorf("labels of %s = %s, want the final set [INBOX STARRED]", keep, got)
	}
	if h.sink.deleted[gone] != 1 || len(h.sink.deleted) != 1 {
		t.Errorf("deleted = %v, want only %s", h.sink.deleted, gone)
	}
	if st.Relabeled != 1 || st.Deleted != 1 || st.Delivered != 0 {
		t.Errorf("stats %+v, want one relabel, one deletion, nothing fetched", st)
	}
	if h.gm.Gets(gone) != 1 {
		t.Errorf("deleted message fetched %d times, want only by the full sync", h.gm.Gets(gone))
	}
}

func TestMessageAddedThenDeletedInOnePageIsNotFetched(t *testing.T) {
	h := newHarness(t, 1, fastConfig())
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	gone := h.gm.Add(mail(9), "INBOX")
	h.gm.ModifyLabels(gone, []string{"STARRED"}, nil)
	h.gm.Delete(gone)
	st, err := h.eng.Sync(context.Background(), h.sink.last())
	if err != nil {
		t.Fatal(err)
	}
	if h.gm.Gets(gone) != 0 || st.Skipped != 1 || h.sink.deleted[gone] != 1 || h.sink.labels[gone] != nil {
		t.Fatalf("gets %d stats %+v deleted %v labels %v: want no fetch, one skip, one deletion, no relabel",
			h.gm.Gets(gone), st, h.sink.deleted, h.sink.labels)
	}
}

func TestRevokedGrantStopsWithReconnectNeeded(t *testing.T) {
	h := newHarness(t, 3, fastConfig())
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	h.oauth.Revoke(h.saved[len(h.saved)-1].RefreshToken)
	h.oauth.ExpireAll()
	// The cached access token is rejected with 401 by the fake API.
	_, err := h.eng.Sync(context.Background(), h.sink.last())
	if !errors.Is(err, googleoauth.ErrReconnectNeeded) {
		t.Fatalf("err = %v, want ErrReconnectNeeded", err)
	}
}

func TestSinkFailureStopsWithoutMovingCursor(t *testing.T) {
	h := newHarness(t, 5, fastConfig())
	h.sink.deliverErr = errors.New("db down")
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err == nil {
		t.Fatal("want error")
	}
	for _, c := range h.sink.cursors {
		if c.HistoryID != 0 || (c.Full != nil && c.Full.PageToken != "") {
			t.Fatalf("cursor advanced past undelivered mail: %+v", c)
		}
	}
}

func TestResumesInterruptedFullSyncFromPageToken(t *testing.T) {
	h := newHarness(t, 20, fastConfig())
	ctx, cancel := context.WithCancel(context.Background())
	h.sink.mu.Lock()
	h.sink.cursors = nil
	h.sink.mu.Unlock()
	// Cancel after the first page's cursor is saved.
	go func() {
		for {
			h.sink.mu.Lock()
			n := len(h.sink.cursors)
			h.sink.mu.Unlock()
			if n >= 2 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, _ = h.eng.Sync(ctx, Cursor{})
	resume := h.sink.last()
	if resume.Full == nil {
		t.Skip("sync finished before cancel; nothing to resume")
	}
	lists := h.gm.Calls("profile")
	if _, err := h.eng.Sync(context.Background(), resume); err != nil {
		t.Fatal(err)
	}
	if h.gm.Calls("profile") != lists {
		t.Fatal("resumed full sync re-read the profile instead of using the saved state")
	}
	if h.sink.count() != 20 {
		t.Fatalf("delivered %d, want 20", h.sink.count())
	}
}

func TestBatching(t *testing.T) {
	tests := []struct {
		name        string
		batchSize   int
		wantBatches int
	}{
		{"gets share HTTP batch requests", 5, 6}, // 3 pages of 10, two batches of 5 each
		{"batch size 1 fetches singly", 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.BatchSize = tc.batchSize
			cfg.PageSize = 10
			h := newHarness(t, 30, cfg)
			if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
				t.Fatal(err)
			}
			if h.sink.count() != 30 {
				t.Fatalf("delivered %d", h.sink.count())
			}
			if got := h.gm.Calls("batch"); got != tc.wantBatches {
				t.Fatalf("batch requests = %d, want %d", got, tc.wantBatches)
			}
			if h.gm.Calls("get") != 30 {
				t.Fatalf("gets = %d, want each message fetched once", h.gm.Calls("get"))
			}
		})
	}
}

func TestBatchItemFailuresFallBackToSingleFetch(t *testing.T) {
	cfg := fastConfig()
	cfg.BatchSize = 10
	cfg.PageSize = 10
	h := newHarness(t, 10, cfg)
	// Three batch items hit throttling or a backend error; they are refetched singly.
	h.gm.FailNextGets(gmailfake.Fault{Code: 429, Reason: "rateLimitExceeded"}, gmailfake.Fault{Code: 403, Reason: "userRateLimitExceeded"}, gmailfake.Fault{Code: 500, Reason: "backendError"})
	if _, err := h.eng.Sync(context.Background(), Cursor{}); err != nil {
		t.Fatal(err)
	}
	if h.sink.count() != 10 || len(h.sink.failed) != 0 {
		t.Fatalf("delivered %d failed %v", h.sink.count(), h.sink.failed)
	}
	if h.gm.Calls("batch") != 1 || h.gm.Calls("get") != 13 {
		t.Fatalf("batch %d gets %d, want 1 batch and 3 single refetches", h.gm.Calls("batch"), h.gm.Calls("get"))
	}
}
