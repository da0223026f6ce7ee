-- The PostgreSQL port of migrations/0010_replicas.sql: which replica ran
-- each background pass (NULL for passes recorded before), carried by the
-- payload views as "replica". Then what only PostgreSQL has: the webhook
-- shim's memory, shared by the replicas.

ALTER TABLE processor_runs ADD COLUMN replica text;
ALTER TABLE reconciler_runs ADD COLUMN replica text;

CREATE OR REPLACE VIEW processor_runs_payload (id, payload) AS
SELECT id, jsonb_build_object(
    'id', id,
    'processor', processor,
    'trigger', run_trigger,
    'state', state,
    'start_time', start_time,
    'end_time', end_time,
    'scanned', scanned,
    'processed', processed,
    'skipped_unchanged', skipped_unchanged,
    'skipped_same_hash', skipped_same_hash,
    'skipped_quarantined', skipped_quarantined,
    'errors', errors,
    'error_details', error_details,
    'items', items,
    'malformed_lines', malformed_lines,
    'capped', capped,
    'deferred', deferred,
    'quarantined', quarantined,
    'error', error,
    'replica', replica
) FROM processor_runs;

CREATE OR REPLACE VIEW reconciler_runs_payload (id, payload) AS
SELECT id, jsonb_build_object(
    'id', id,
    'trigger', trigger,
    'state', state,
    'side', side,
    'start_time', start_time,
    'end_time', end_time,
    'gate_side_ran', gate_side_ran,
    'gate_side', jsonb_build_object('scanned', gate_scanned, 'advanced', gate_advanced, 'replayed', 0,
                                    'skipped', gate_skipped, 'errors', gate_errors),
    'tracker_side_ran', tracker_side_ran,
    'tracker_side', jsonb_build_object('scanned', tracker_scanned, 'advanced', tracker_advanced,
                                       'replayed', tracker_replayed, 'skipped', tracker_skipped,
                                       'errors', tracker_errors),
    'projects_polled', projects_polled,
    'actions', actions,
    'error_details', error_details,
    'error', error,
    'replica', replica
) FROM reconciler_runs;

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
