package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ownyou/home/services/ingest/mailparse"
)

type memRecorder struct {
	mu     sync.Mutex
	last   Progress
	calls  int
	errors []string
}

func (m *memRecorder) Progress(_ context.Context, p Progress) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last, m.calls = p, m.calls+1
	return nil
}
func (m *memRecorder) MessageError(_ context.Context, rm *mailparse.RawMessage, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errors = append(m.errors, fmt.Sprintf("#%d: %v", rm.Index, err))
	return nil
}

func fileOrigin(rm *mailparse.RawMessage) Origin {
	return Origin{SourceID: "file", ExternalID: fmt.Sprintf("f#%d", rm.Index), FallbackDate: rm.EnvelopeDate}
}

func TestImportStreamCountsImportsDuplicatesAndErrors(t *testing.T) {
	var b bytes.Buffer
	if err := mailparse.WriteSyntheticMbox(&b, 300, 7); err != nil {
		t.Fatal(err)
	}
	// An oversized message and an empty one in the middle.
	b.WriteString("From x Mon Jan  2 15:04:05 2006\nSubject: big\n\n" + strings.Repeat("y", 300_000) + "\n\n")
	b.WriteString("From x Mon Jan  2 15:04:05 2006\n\n")
	data := b.Bytes()

	st, pub := newMemStore(), &memPub{}
	p := New(st, pub, mailparse.Options{})
	rec := &memRecorder{}
	prog, err := ImportStream(context.Background(), mailparse.NewMboxReader(bytes.NewReader(data), mailparse.ReaderOptions{MaxSize: 200_000}), p, fileOrigin, rec, StreamOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if prog.Messages != 302 || prog.Imported != 300 || prog.Errors != 2 || prog.BytesRead != int64(len(data)) {
		t.Fatalf("progress %+v", prog)
	}
	if len(rec.errors) != 2 || !strings.Contains(strings.Join(rec.errors, ";"), "size cap") {
		t.Fatalf("errors %v", rec.errors)
	}
	if rec.last != prog {
		t.Fatalf("final progress not reported: %+v", rec.last)
	}
	// The same file again is all duplicates and publishes nothing.
	again, err := ImportStream(context.Background(), mailparse.NewMboxReader(bytes.NewReader(data), mailparse.ReaderOptions{MaxSize: 200_000}), p, fileOrigin, &memRecorder{}, StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Imported != 0 || again.Duplicate != 300 || len(pub.ids) != 300 {
		t.Fatalf("re-import %+v, publishes %d", again, len(pub.ids))
	}
}

func TestImportStreamStopsOnInfrastructureFailure(t *testing.T) {
	var b bytes.Buffer
	mailparse.WriteSyntheticMbox(&b, 50, 1)
	pub := &memPub{fail: errors.New("nats down")}
	_, err := ImportStream(context.Background(), mailparse.NewMboxReader(&b, mailparse.ReaderOptions{}), New(newMemStore(), pub, mailparse.Options{}), fileOrigin, &memRecorder{}, StreamOptions{})
	if err == nil || !strings.Contains(err.Error(), "nats down") {
		t.Fatalf("err = %v, want the publish failure", err)
	}
}

// batchPub is a BatchPublisher whose batches fail while fail is set.
type batchPub struct {
	memPub
	batches int
}

func (p *batchPub) PublishIngestedBatch(ctx context.Context, es []*Email) error {
	p.mu.Lock()
	p.batches++
	fail := p.fail
	p.mu.Unlock()
	if fail != nil {
		return fail
	}
	for _, e := range es {
		if err := p.PublishIngested(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func TestChunkWhosePublishFailsIsNotMarkedAndIsPublishedOnRerun(t *testing.T) {
	var b bytes.Buffer
	if err := mailparse.WriteSyntheticMbox(&b, 25, 5); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	st, pub := newMemStore(), &batchPub{memPub: memPub{fail: errors.New("acks lost")}}
	p := New(st, pub, mailparse.Options{})
	opts := StreamOptions{Workers: 2, ChunkMessages: 10}
	prog, err := ImportStream(context.Background(), mailparse.NewMboxReader(bytes.NewReader(data), mailparse.ReaderOptions{}), p, fileOrigin, &memRecorder{}, opts)
	if err == nil || !strings.Contains(err.Error(), "acks lost") {
		t.Fatalf("err = %v, want the publish failure", err)
	}
	if prog.Imported != 0 || len(st.published) != 0 {
		t.Fatalf("failed chunk counted or marked: progress %+v, marked %d", prog, len(st.published))
	}
	if len(st.emails) == 0 {
		t.Fatal("the failed chunk was not stored before publishing")
	}
	// The rerun publishes every email, the stored-but-unconfirmed ones included.
	pub.fail = nil
	prog, err = ImportStream(context.Background(), mailparse.NewMboxReader(bytes.NewReader(data), mailparse.ReaderOptions{}), p, fileOrigin, &memRecorder{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if prog.Imported != 25 || prog.Duplicate != 0 || len(st.published) != 25 || len(pub.ids) != 25 || pub.batches < 3 {
		t.Fatalf("rerun: progress %+v, marked %d, published %d in %d batches", prog, len(st.published), len(pub.ids), pub.batches)
	}
	// A third run is a no-op.
	prog, err = ImportStream(context.Background(), mailparse.NewMboxReader(bytes.NewReader(data), mailparse.ReaderOptions{}), p, fileOrigin, &memRecorder{}, opts)
	if err != nil || prog.Imported != 0 || prog.Duplicate != 25 || len(pub.ids) != 25 {
		t.Fatalf("third run: %+v %v, published %d", prog, err, len(pub.ids))
	}
}
