-- Reconciler passes (SPEC §8). A pass is inserted RUNNING when it starts and
-- updated once when it ends, so the change log carries reconciler_run.started
-- and reconciler_run.finished (or .failed) events. Counts are columns (GetStatus
-- sums them); the first 100 actions and errors are JSON arrays.

CREATE TABLE reconciler_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger          TEXT    NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    state            TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    side             TEXT    CHECK (side IN ('gate', 'tracker')),
    start_time       INTEGER NOT NULL,
    end_time         INTEGER,
    gate_side_ran    INTEGER NOT NULL DEFAULT 0 CHECK (gate_side_ran IN (0, 1)),
    gate_scanned     INTEGER NOT NULL DEFAULT 0,
    gate_advanced    INTEGER NOT NULL DEFAULT 0,
    gate_skipped     INTEGER NOT NULL DEFAULT 0,
    gate_errors      INTEGER NOT NULL DEFAULT 0,
    tracker_side_ran INTEGER NOT NULL DEFAULT 0 CHECK (tracker_side_ran IN (0, 1)),
    tracker_scanned  INTEGER NOT NULL DEFAULT 0,
    tracker_advanced INTEGER NOT NULL DEFAULT 0,
    tracker_replayed INTEGER NOT NULL DEFAULT 0,
    tracker_skipped  INTEGER NOT NULL DEFAULT 0,
    tracker_errors   INTEGER NOT NULL DEFAULT 0,
    projects_polled  INTEGER NOT NULL DEFAULT 0,
    actions          TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(actions)),
    error_details    TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(error_details)),
    error            TEXT
);

CREATE INDEX reconciler_runs_by_start ON reconciler_runs (start_time);

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
    'error', error
) FROM reconciler_runs;

CREATE TRIGGER reconciler_runs_created AFTER INSERT ON reconciler_runs
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT 'reconciler_run.started', 'reconciler_run', NEW.id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM reconciler_runs_payload WHERE id = NEW.id;
END;

CREATE TRIGGER reconciler_runs_updated AFTER UPDATE ON reconciler_runs
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT CASE NEW.state WHEN 'failed' THEN 'reconciler_run.failed'
                          WHEN 'succeeded' THEN 'reconciler_run.finished'
                          ELSE 'reconciler_run.updated' END,
           'reconciler_run', NEW.id, payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM reconciler_runs_payload WHERE id = NEW.id;
END;
