-- Which replica ran each background pass: its configured replica_name (or
-- <hostname>:<pid>), recorded when the pass starts; NULL for passes recorded
-- before this migration. The payload views (answers and change-log events)
-- carry it as "replica".

ALTER TABLE processor_runs ADD COLUMN replica TEXT;
ALTER TABLE reconciler_runs ADD COLUMN replica TEXT;

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
    'error', error,
    'replica', replica
) FROM processor_runs;

DROP VIEW reconciler_runs_payload;
CREATE VIEW reconciler_runs_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'trigger', trigger,
    'state', state,
    'side', side,
    'start_time', start_time,
    'end_time', end_time,
    'gate_side_ran', CASE WHEN gate_side_ran THEN json('true') ELSE json('false') END,
    'gate_side', json_object('scanned', gate_scanned, 'advanced', gate_advanced, 'replayed', 0,
                             'skipped', gate_skipped, 'errors', gate_errors),
    'tracker_side_ran', CASE WHEN tracker_side_ran THEN json('true') ELSE json('false') END,
    'tracker_side', json_object('scanned', tracker_scanned, 'advanced', tracker_advanced,
                                'replayed', tracker_replayed, 'skipped', tracker_skipped,
                                'errors', tracker_errors),
    'projects_polled', projects_polled,
    'actions', json(actions),
    'error_details', json(error_details),
    'error', error,
    'replica', replica
) FROM reconciler_runs;
