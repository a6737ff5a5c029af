package embedder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embed"
)

// maxTextBytes bounds one text of a request; longer texts are refused (the
// model sees at most MaxTokens tokens anyway).
const maxTextBytes = 64 << 10

// serveRequest answers one embedding request. It never blocks the NATS
// dispatcher: the work runs on its own goroutine when one of the Requests
// slots is free, otherwise the request is refused as overloaded at once.
func (s *Service) serveRequest(msg *nats.Msg) {
	select {
	case s.sem <- struct{}{}:
	default:
		s.reply(msg, bus.EmbedReply{Error: &bus.EmbedError{Code: bus.EmbedErrOverloaded, Message: fmt.Sprintf("%d requests in progress; retry later", cap(s.sem))}})
		return
	}
	go func() {
		defer func() { <-s.sem }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.reply(msg, s.answer(ctx, msg.Data))
	}()
}

// answer validates and embeds one request.
func (s *Service) answer(ctx context.Context, data []byte) bus.EmbedReply {
	var req bus.EmbedRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return badRequest("malformed request: %v", err)
	}
	if len(req.Texts) > s.cfg.MaxTexts {
		return badRequest("%d texts; at most %d per request", len(req.Texts), s.cfg.MaxTexts)
	}
	for i, t := range req.Texts {
		if len(t) > maxTextBytes {
			return badRequest("text %d is %d bytes; at most %d", i, len(t), maxTextBytes)
		}
	}
	active, _ := s.models()
	rep := bus.EmbedReply{Model: active.ID(), Dim: active.Dim()}
	if len(req.Texts) == 0 {
		return rep
	}
	vecs, err := active.TryEmbed(ctx, req.Texts)
	switch {
	case errors.Is(err, embed.ErrOverloaded):
		return bus.EmbedReply{Error: &bus.EmbedError{Code: bus.EmbedErrOverloaded, Message: err.Error()}}
	case errors.Is(err, embed.ErrTooLarge):
		return badRequest("%v", err)
	case err != nil:
		s.log.Error("embedding request failed", "texts", len(req.Texts), "err", err)
		return bus.EmbedReply{Error: &bus.EmbedError{Code: bus.EmbedErrInternal, Message: err.Error()}}
	}
	rep.Vectors = vecs
	return rep
}

func badRequest(format string, args ...any) bus.EmbedReply {
	return bus.EmbedReply{Error: &bus.EmbedError{Code: bus.EmbedErrBadRequest, Message: fmt.Sprintf(format, args...)}}
}

func (s *Service) reply(msg *nats.Msg, rep bus.EmbedReply) {
	result := "ok"
	if rep.Error != nil {
		result = rep.Error.Code
	}
	s.requests.WithLabelValues(result).Inc()
	if msg.Reply == "" {
		return // a publish, not a request: nobody to answer
	}
	data, err := json.Marshal(rep)
	if err != nil {
		s.log.Error("encode embed reply", "err", err)
		return
	}
	if err := msg.Respond(data); err != nil {
		s.log.Warn("embed reply", "err", err)
	}
}
