-- The PostgreSQL port of migrations/0013_forgotten_count.sql: how many
-- transcripts a pass forgot because they were gone from the transcripts
-- folder, carried by the payload view as "forgotten" (0 for passes recorded
-- before).

ALTER TABLE processor_runs ADD COLUMN forgotten bigint NOT NULL DEFAULT 0;

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
    'forgotten', forgotten,
    'error', error,
    'replica', replica
) FROM processor_runs;
