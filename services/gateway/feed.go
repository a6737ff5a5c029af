package gateway

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/pkg/store"
)

// feedTTL is how long a ranked feed is served before it is recomputed in
// the background. Ranking decays with time and snoozes run out, so even
// without any change an entry is refreshed this often; every change to a
// card drops the cache at once.
const feedTTL = 10 * time.Second

// feedCache keeps the ranked feed between requests. Ranking reads the
// visible cards and all feedback, too much work to repeat for each of many
// readers opening the app at once.
//
// Every change to a card drops all entries: invalidate is called on every
// missions.* message (any service, any replica) and, synchronously, after
// this gateway stores feedback, so a client always reads its own writes. A
// dropped entry is recomputed by the next reader (concurrent readers of the
// same filter share one computation); an entry older than feedTTL is still
// served while one background refresh replaces it, so readers never wait
// for the periodic refresh. Safe for concurrent use; the cached slices and
// bodies are shared and must not be modified.
type feedCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by invalidate; a result computed under an older gen is not stored
	entries map[string]*feedEntry
	group   singleflight.Group
	now     func() time.Time
}

// feedEntry is one filter's ranked feed.
type feedEntry struct {
	ranked     []mission.Ranked
	at         time.Time
	refreshing bool           // a background refresh is running (guarded by feedCache.mu)
	bodies     map[int][]byte // encoded responses by limit (guarded by feedCache.mu)
}

func newFeedCache() *feedCache {
	return &feedCache{entries: map[string]*feedEntry{}, now: time.Now}
}

// feedKey is the cache key of a filter.
func feedKey(f store.MissionFilter) string {
	return f.Agent + "\x00" + f.Kind + "\x00" + strings.Join(f.Statuses, ",")
}

// invalidate drops every cached feed.
func (c *feedCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// get returns the ranked feed for key: the cached entry (refreshed in the
// background once older than feedTTL), or a fresh computation when there is
// none.
func (c *feedCache) get(ctx context.Context, key string, compute func(context.Context) ([]mission.Ranked, error)) (*feedEntry, error) {
	c.mu.Lock()
	e, gen := c.entries[key], c.gen
	stale := e != nil && !e.refreshing && c.now().Sub(e.at) >= feedTTL
	if stale {
		e.refreshing = true
	}
	c.mu.Unlock()
	if e != nil {
		if stale {
			go func() { _, _ = c.fill(context.WithoutCancel(ctx), key, gen, compute) }()
		}
		return e, nil
	}
	return c.fill(ctx, key, gen, compute)
}

// fill computes key's feed once for all concurrent callers of the same
// generation and stores it unless the cache was invalidated meanwhile. The
// generation is part of the flight's key: a caller arriving after an
// invalidation (its own feedback, say) never joins an older computation.
func (c *feedCache) fill(ctx context.Context, key string, gen uint64, compute func(context.Context) ([]mission.Ranked, error)) (*feedEntry, error) {
	v, err, _ := c.group.Do(key+"\x00"+strconv.FormatUint(gen, 10), func() (any, error) {
		// Detached from the first caller: the result serves every waiter,
		// so one client hanging up must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		at := c.now()
		ranked, err := compute(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			if old := c.entries[key]; old != nil {
				old.refreshing = false // let the next reader try again
			}
			return nil, err
		}
		e := &feedEntry{ranked: ranked, at: at, bodies: map[int][]byte{}}
		if c.gen == gen {
			c.entries[key] = e
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*feedEntry), nil
}

// body returns the encoded response for limit cached in e, if any.
func (c *feedCache) body(e *feedEntry, limit int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := e.bodies[limit]
	return b, ok
}

// setBody caches the encoded response for limit in e.
func (c *feedCache) setBody(e *feedEntry, limit int, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(e.bodies) < 16 { // a few page sizes are used; bound the rest
		e.bodies[limit] = b
	}
}
