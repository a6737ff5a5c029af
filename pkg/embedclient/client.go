// Package embedclient asks the embedder service for embeddings over NATS
// request/reply (bus.SubjectEmbed), so services other than the embedder get
// transformer vectors without loading a model themselves. A Client is safe
// for concurrent use.
package embedclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ownyou/home/pkg/bus"
)

// Errors by reply code; match with errors.Is.
var (
	ErrOverloaded = errors.New("embedder overloaded")
	ErrBadRequest = errors.New("embedding request rejected")
	ErrEmbedder   = errors.New("embedder failed")
	// ErrUnavailable means no embedder answered (none running, or timeout).
	ErrUnavailable = errors.New("embedder unavailable")
)

// Client implements the embed.Embedder contract remotely.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
	mu      sync.Mutex
	model   string
	dim     int
}

// New returns a client; timeout bounds each request (default 10s).
func New(nc *nats.Conn, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Client{nc: nc, timeout: timeout}
}

// Embed returns one vector per text, in order.
func (c *Client) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	rep, err := c.request(ctx, texts)
	if err != nil {
		return nil, err
	}
	if len(rep.Vectors) != len(texts) {
		return nil, fmt.Errorf("%w: %d vectors for %d texts", ErrEmbedder, len(rep.Vectors), len(texts))
	}
	return rep.Vectors, nil
}

// Info asks the embedder for its model id and dimension.
func (c *Client) Info(ctx context.Context) (model string, dim int, err error) {
	rep, err := c.request(ctx, nil)
	if err != nil {
		return "", 0, err
	}
	return rep.Model, rep.Dim, nil
}

// ModelID is the model of the last reply ("" before the first); call Info to fetch it.
func (c *Client) ModelID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.model
}

// Dim is the dimension of the last reply (0 before the first).
func (c *Client) Dim() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dim
}

func (c *Client) request(ctx context.Context, texts []string) (bus.EmbedReply, error) {
	if texts == nil {
		texts = []string{}
	}
	data, err := json.Marshal(bus.EmbedRequest{Texts: texts})
	if err != nil {
		return bus.EmbedReply{}, fmt.Errorf("embed request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(ctx, bus.SubjectEmbed, data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return bus.EmbedReply{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return bus.EmbedReply{}, fmt.Errorf("embed request: %w", err)
	}
	var rep bus.EmbedReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return bus.EmbedReply{}, fmt.Errorf("%w: bad reply: %v", ErrEmbedder, err)
	}
	if rep.Error != nil {
		base := ErrEmbedder
		switch rep.Error.Code {
		case bus.EmbedErrOverloaded:
			base = ErrOverloaded
		case bus.EmbedErrBadRequest:
			base = ErrBadRequest
		}
		return rep, fmt.Errorf("%w: %s", base, rep.Error.Message)
	}
	c.mu.Lock()
	c.model, c.dim = rep.Model, rep.Dim
	c.mu.Unlock()
	return rep, nil
}
