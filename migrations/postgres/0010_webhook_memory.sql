-- The webhook shim's memory, shared by every replica (on SQLite it is the
-- shim's own file, webhooks.db): which deliveries were acknowledged, and the
-- highest rank applied per forge entity (src/webhooks/ordering.rs). Both are
-- bounded by webhooks.dedup_capacity: the oldest rows (smallest id) go.
-- PostgreSQL only: no change-log trigger, this is not product state.

CREATE TABLE webhook_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text   NOT NULL,
    delivery_key text   NOT NULL,
    seen_at      bigint NOT NULL,
    UNIQUE (source, delivery_key)
);

CREATE TABLE webhook_positions (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source text   NOT NULL,
    entity text   NOT NULL,
    rank_a bigint NOT NULL,
    rank_b bigint NOT NULL,
    rank_c bigint NOT NULL,
    UNIQUE (source, entity)
);
