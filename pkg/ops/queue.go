package ops

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ownyou/home/pkg/bus"
)

// QueueCollector exports each stage's queue from JetStream consumer info at
// scrape time: ownyou_stage_queue_pending (messages not yet handed to any
// worker: the consumer lag), ownyou_stage_queue_ack_pending (handed out, not yet
// acknowledged) and ownyou_stage_queue_redelivered. Safe for concurrent scrapes.
type QueueCollector struct {
	b          *bus.Bus
	pending    *prometheus.Desc
	ackPending *prometheus.Desc
	redeliver  *prometheus.Desc
	up         *prometheus.Desc
}

// NewQueueCollector returns a collector asking b's JetStream about every stage
// of bus.Stages that has a consumer.
func NewQueueCollector(b *bus.Bus) *QueueCollector {
	return &QueueCollector{
		b:          b,
		pending:    prometheus.NewDesc("ownyou_stage_queue_pending", "Messages waiting for a stage that no worker has received yet (consumer lag).", []string{"stage"}, nil),
		ackPending: prometheus.NewDesc("ownyou_stage_queue_ack_pending", "Messages a stage's workers received and have not acknowledged yet.", []string{"stage"}, nil),
		redeliver:  prometheus.NewDesc("ownyou_stage_queue_redelivered", "Messages of a stage currently being redelivered after a failure or timeout.", []string{"stage"}, nil),
		up:         prometheus.NewDesc("ownyou_stage_queue_info_up", "1 when the stage's consumer info could be read at this scrape.", []string{"stage"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redeliver
	ch <- c.up
}

// Collect implements prometheus.Collector; a stage whose info cannot be read
// reports up=0 and no queue figures rather than failing the scrape.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, q := range StageQueues(ctx, c.b) {
		if q.Err != nil {
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0, q.Stage)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1, q.Stage)
		if !q.Exists {
			continue // no worker of the stage has started yet: nothing to report
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(q.Pending), q.Stage)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(q.AckPending), q.Stage)
		ch <- prometheus.MustNewConstMetric(c.redeliver, prometheus.GaugeValue, float64(q.Redelivered), q.Stage)
	}
}

// Queue is one stage's consumer state.
type Queue struct {
	Stage       string `json:"stage"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	Exists      bool   `json:"exists"` // false until a worker of the stage has created its consumer
	Err         error  `json:"-"`
}

// StageQueues reads the consumer info of every stage with a consumer, in
// pipeline order; a failure is recorded in that stage's Err.
func StageQueues(ctx context.Context, b *bus.Bus) []Queue {
	var out []Queue
	for _, s := range bus.Stages() {
		if s.Consumer == "" {
			continue
		}
		q := Queue{Stage: s.Name}
		cons, err := b.JetStream().Consumer(ctx, bus.StreamEmails, s.Consumer)
		if err == nil {
			info, ierr := cons.Info(ctx)
			if ierr == nil {
				q.Exists = true
				q.Pending, q.AckPending, q.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
			}
			err = ierr
		}
		if err != nil && !isConsumerNotFound(err) {
			q.Err = err
		}
		out = append(out, q)
	}
	return out
}
