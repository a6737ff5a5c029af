package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ownyou/home/pkg/bus"
)

// BucketWorkers is the NATS KV bucket holding one heartbeat per worker process.
const BucketWorkers = "workers"

// workersTTL is how long a heartbeat survives without a new beat; a crashed
// worker's entry disappears after it, while the stall threshold (much shorter)
// flags it first.
const workersTTL = 15 * time.Minute

// Beat is one worker's heartbeat as stored in the workers bucket.
type Beat struct {
	Service  string    `json:"service"`
	Instance string    `json:"instance"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	LastBeat time.Time `json:"last_beat"`
	InFlight int       `json:"in_flight"`
	Stopping bool      `json:"stopping,omitempty"`
}

// HeartbeatOptions configure a Heartbeat.
type HeartbeatOptions struct {
	Service  string        // service name (ingest, embedder, …)
	Interval time.Duration // time between beats; default 10s
	InFlight func() int    // messages the process is handling now; optional
	Log      *slog.Logger
	Host     string // default os.Hostname
	PID      int    // default os.Getpid
	Now      func() time.Time
}

// Heartbeat records that a worker process is alive. Run owns the beating; it
// is not safe to run twice.
type Heartbeat struct {
	kv   jetstream.KeyValue
	o    HeartbeatOptions
	beat Beat
}

var keyUnsafe = regexp.MustCompile(`[^-_a-zA-Z0-9]`)

// NewHeartbeat creates the workers bucket when missing and prepares this
// process's entry (key "<service>.<host>-<pid>").
func NewHeartbeat(b *bus.Bus, o HeartbeatOptions) (*Heartbeat, error) {
	if o.Service == "" {
		return nil, errors.New("heartbeat: empty service name")
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	kv, err := WorkersBucket(context.Background(), b)
	if err != nil {
		return nil, err
	}
	inst := keyUnsafe.ReplaceAllString(fmt.Sprintf("%s-%d", o.Host, o.PID), "_")
	return &Heartbeat{kv: kv, o: o, beat: Beat{Service: o.Service, Instance: inst, Host: o.Host, PID: o.PID, Started: o.Now().UTC()}}, nil
}

// WorkersBucket returns the workers KV bucket, creating it when missing.
func WorkersBucket(ctx context.Context, b *bus.Bus) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketWorkers,
		Description: "heartbeat of every worker process",
		TTL:         workersTTL,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("workers bucket: %w", err)
	}
	return kv, nil
}

// Key is this process's key in the workers bucket.
func (h *Heartbeat) Key() string { return h.o.Service + "." + h.beat.Instance }

// Beat writes one heartbeat now.
func (h *Heartbeat) Beat(ctx context.Context) error {
	h.beat.LastBeat = h.o.Now().UTC()
	if h.o.InFlight != nil {
		h.beat.InFlight = h.o.InFlight()
	}
	data, err := json.Marshal(h.beat)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if _, err := h.kv.Put(ctx, h.Key(), data); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Run beats every interval until ctx is cancelled, then deletes the entry so
// the pipeline view stops counting this worker. A failed beat is logged and
// retried at the next tick (NATS may be reconnecting); it never stops the process.
func (h *Heartbeat) Run(ctx context.Context) error {
	t := time.NewTicker(h.o.Interval)
	defer t.Stop()
	failing := false
	for {
		bctx, cancel := context.WithTimeout(ctx, h.o.Interval)
		err := h.Beat(bctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			h.o.Log.WarnContext(ctx, "heartbeat failed", "err", err)
			failing = true
		case err == nil && failing:
			h.o.Log.InfoContext(ctx, "heartbeat recovered")
			failing = false
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := h.kv.Delete(dctx, h.Key()); err != nil {
				h.o.Log.Warn("heartbeat: remove entry", "err", err)
			}
			cancel()
			return nil
		case <-t.C:
		}
	}
}

// Workers lists every heartbeat in the bucket, sorted by service and instance.
func Workers(ctx context.Context, kv jetstream.KeyValue) ([]Beat, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	var out []Beat
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted between list and get
		}
		if err != nil {
			return nil, fmt.Errorf("get worker %s: %w", key, err)
		}
		var b Beat
		if err := json.Unmarshal(e.Value(), &b); err != nil {
			continue // not ours to interpret; never fail the whole view over one entry
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Instance < out[j].Instance
	})
	return out, nil
}

// InFlightFrom returns a function that sums the ownyou_stage_inflight gauges
// of reg (the bus runner's in-flight messages in this process); nil reg gives nil.
func InFlightFrom(reg prometheus.Gatherer) func() int {
	if reg == nil {
		return nil
	}
	return func() int {
		mfs, err := reg.Gather()
		if err != nil {
			return 0
		}
		n := 0.0
		for _, mf := range mfs {
			if mf.GetName() != "ownyou_stage_inflight" {
				continue
			}
			for _, m := range mf.GetMetric() {
				n += m.GetGauge().GetValue()
			}
		}
		return int(n)
	}
}

// serviceOfStage maps a stage name to the service running it (identical today;
// kept explicit so a renamed consumer does not silently break stall detection).
func serviceOfStage(stage string) string { return strings.SplitN(stage, "-", 2)[0] }
