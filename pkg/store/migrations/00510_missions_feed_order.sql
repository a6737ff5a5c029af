-- +goose Up
-- The feed reads the most recently changed cards first (ORDER BY updated_at
-- DESC, id LIMIT n); this index lets it stop after n visible cards instead of
-- sorting every card on each request.
CREATE INDEX missions_feed_order_idx ON missions (updated_at DESC, id);

-- +goose Down
DROP INDEX IF EXISTS missions_feed_order_idx;
