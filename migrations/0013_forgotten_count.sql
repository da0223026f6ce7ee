-- How many transcripts a pass forgot because they were gone from the
-- transcripts folder (see 0012): their state and products went in that
-- pass. The payload views (answers and change-log events) carry it as
-- "forgotten"; passes recorded before this migration count 0.

ALTER TABLE processor_runs ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0;

DROP VIEW processor_runs_payload;
CREATE VIEW processor_runs_payload (id, payload) AS
SELECT id, json_object(
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
    'error_details', json(error_details),
    'items', items,
    'malformed_lines', malformed_lines,
    'capped', CASE WHEN capped THEN json('true') ELSE json('false') END,
    'deferred', deferred,
    'quarantined', quarantined,
    'forgotten', forgotten,
    'error', error,
    'replica', replica
) FROM processor_runs;
