package intake

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/ownyou/home/services/ingest/mailparse"
)

type memStore struct {
	mu        sync.Mutex
	emails    map[string]*Email
	published map[string]bool
	origins   map[string]int
}

func newMemStore() *memStore {
	return &memStore{emails: map[string]*Email{}, published: map[string]bool{}, origins: map[string]int{}}
}

func (m *memStore) UpsertEmail(_ context.Context, e *Email) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.emails[e.ID]; !ok {
		m.emails[e.ID] = e
	}
	m.origins[e.ID]++
	return !m.published[e.ID], nil
}
func (m *memStore) MarkPublished(_ context.Context, ids ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.published[id] = true
	}
	return nil
}

type memPub struct {
	mu   sync.Mutex
	ids  []string
	fail error
}

func (p *memPub) PublishIngested(_ context.Context, e *Email) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.ids = append(p.ids, e.ID)
	return nil
}

const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\nMessage-ID: <x1@example.com>\r\n\r\nhello\r\n"

func TestSameMailTwiceIsStoredAndPublishedOnce(t *testing.T) {
	st, pub := newMemStore(), &memPub{}
	p := New(st, pub, mailparse.Options{})
	ctx := context.Background()
	r1, err := p.Process(ctx, Origin{SourceID: "gmail", ExternalID: "g1"}, []byte(raw))
	if err != nil || !r1.Published {
		t.Fatalf("first: %+v %v", r1, err)
	}
	// Same mail through another source with different trace headers.
	r2, err := p.Process(ctx, Origin{SourceID: "mbox", ExternalID: "f#0"}, []byte("X-Gmail-Labels: Inbox\r\n"+raw))
	if err != nil || r2.Published || r2.EmailID != r1.EmailID {
		t.Fatalf("second: %+v %v (first %s)", r2, err, r1.EmailID)
	}
	if len(st.emails) != 1 || len(pub.ids) != 1 || st.origins[r1.EmailID] != 2 {
		t.Fatalf("emails %d publishes %d origins %d", len(st.emails), len(pub.ids), st.origins[r1.EmailID])
	}
	if string(st.emails[r1.EmailID].Raw) != raw {
		t.Fatal("raw message not handed to the store")
	}
}

func TestPublishFailureIsRetriedOnNextProcess(t *testing.T) {
	st, pub := newMemStore(), &memPub{fail: errors.New("nats down")}
	p := New(st, pub, mailparse.Options{})
	if _, err := p.Process(context.Background(), Origin{}, []byte(raw)); err == nil {
		t.Fatal("want publish error")
	}
	pub.fail = nil
	r, err := p.Process(context.Background(), Origin{}, []byte(raw))
	if err != nil || !r.Published || len(pub.ids) != 1 {
		t.Fatalf("retry: %+v %v %d", r, err, len(pub.ids))
	}
}

func TestUnparseableMessageIsTypedError(t *testing.T) {
	p := New(newMemStore(), &memPub{}, mailparse.Options{MaxSize: 10})
	_, err := p.Process(context.Background(), Origin{}, []byte(raw))
	if !errors.Is(err, ErrUnparseable) || !errors.Is(err, mailparse.ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestEmailIDIsStable(t *testing.T) {
	a, b := EmailID("m@x", "h1"), EmailID("m@x", "h1")
	if a != b || a == "" || a == EmailID("m@x", "h2") {
		t.Fatalf("ids %s %s", a, b)
	}
}
