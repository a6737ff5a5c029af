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

// feedTTL is the longest a ranked feed is reused. Ranking decays with time
// and snoozes run out, so even without any change an entry is recomputed
// this often; every change to a card drops the cache at once.
const feedTTL = 2 * time.Second

// feedCache keeps the ranked feed between requests. Ranking reads every
// visible card and all feedback, too much work to repeat for each of many
// readers opening the app at once. An entry lives at most feedTTL and all
// are dropped when a card changes: invalidate is called on every missions.*
// message (any service, any replica) and, synchronously, after this
// gateway stores feedback, so a client reads its own writes. Concurrent
// misses for the same filter share one computation. Safe for concurrent use;
// the cached slices are shared and must not be modified.
type feedCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by invalidate; an entry computed under an older gen is not stored
	entries map[string]feedEntry
	group   singleflight.Group
	now     func() time.Time
}

type feedEntry struct {
	ranked []mission.Ranked
	at     time.Time
}

func newFeedCache() *feedCache {
	return &feedCache{entries: map[string]feedEntry{}, now: time.Now}
}

// invalidate drops every cached feed.
func (c *feedCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// get returns the ranked feed for f, from the cache when fresh, else from
// compute (once for all concurrent callers of the same filter).
func (c *feedCache) get(ctx context.Context, f store.MissionFilter, compute func(context.Context) ([]mission.Ranked, error)) ([]mission.Ranked, error) {
	key := f.Agent + "\x00" + f.Kind + "\x00" + strings.Join(f.Statuses, ",")
	c.mu.Lock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < feedTTL {
		return e.ranked, nil
	}
	// The generation is part of the flight's key: a caller arriving after an
	// invalidation (its own feedback, say) never joins an older computation.
	v, err, _ := c.group.Do(key+"\x00"+strconv.FormatUint(gen, 10), func() (any, error) {
		// Detached from the first caller: the result serves every waiter,
		// so one client hanging up must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		at := c.now()
		ranked, err := compute(ctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.gen == gen {
			c.entries[key] = feedEntry{ranked: ranked, at: at}
		}
		c.mu.Unlock()
		return ranked, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]mission.Ranked), nil
}
