-- Processors (SPEC §9): passes over agent transcripts, what each processor
-- remembers per transcript, and what the built-in processors produce. Each
-- table feeds change_log through triggers (the pattern of 0001).

-- One pass of one processor. Counts are final once state leaves 'running'.
CREATE TABLE processor_runs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    processor           TEXT    NOT NULL,
    run_trigger         TEXT    NOT NULL CHECK (run_trigger IN ('scheduled', 'manual')),
    state               TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    start_time          INTEGER NOT NULL,
    end_time            INTEGER,
    scanned             INTEGER NOT NULL DEFAULT 0,
    processed           INTEGER NOT NULL DEFAULT 0,
    skipped_unchanged   INTEGER NOT NULL DEFAULT 0,
    skipped_same_hash   INTEGER NOT NULL DEFAULT 0,
    skipped_quarantined INTEGER NOT NULL DEFAULT 0,
    errors              INTEGER NOT NULL DEFAULT 0,
    error_details       TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(error_details)),
    items               INTEGER NOT NULL DEFAULT 0,
    malformed_lines     INTEGER NOT NULL DEFAULT 0,
    capped              INTEGER NOT NULL DEFAULT 0 CHECK (capped IN (0, 1)),
    deferred            INTEGER NOT NULL DEFAULT 0,
    quarantined         INTEGER NOT NULL DEFAULT 0,
    error               TEXT
);

CREATE INDEX processor_runs_by_processor ON processor_runs (processor, id);

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
    'error', error
) FROM processor_runs;

CREATE TRIGGER processor_runs_created AFTER INSERT ON processor_runs
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT 'processor_run.started', 'processor_run', NEW.id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM processor_runs_payload WHERE id = NEW.id;
END;

CREATE TRIGGER processor_runs_updated AFTER UPDATE ON processor_runs
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT 'processor_run.' || CASE NEW.state WHEN 'running' THEN 'updated' ELSE NEW.state END,
           'processor_run', NEW.id, payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM processor_runs_payload WHERE id = NEW.id;
END;

-- What one processor remembers about one transcript ("owner/name.jsonl").
-- A transcript is quarantined exactly when quarantine_time is set.
CREATE TABLE processor_state (
    processor            TEXT    NOT NULL,
    transcript           TEXT    NOT NULL,
    owner                TEXT    NOT NULL,
    processed_time       INTEGER,
    items                INTEGER NOT NULL DEFAULT 0,
    content_hash         TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT,
    last_error_time      INTEGER,
    quarantine_time      INTEGER,
    PRIMARY KEY (processor, transcript)
) WITHOUT ROWID;

CREATE INDEX processor_state_quarantined ON processor_state (processor, transcript)
    WHERE quarantine_time IS NOT NULL;

-- The id is "<processor>/<transcript>"; processor names hold no '/'. The
-- key columns let triggers and readers reach one row by primary key.
CREATE VIEW processor_state_payload (id, processor, transcript, payload) AS
SELECT processor || '/' || transcript, processor, transcript, json_object(
    'processor', processor,
    'transcript', transcript,
    'owner', owner,
    'processed_time', processed_time,
    'items', items,
    'content_hash', content_hash,
    'consecutive_failures', consecutive_failures,
    'last_error', last_error,
    'last_error_time', last_error_time,
    'quarantine_time', quarantine_time
) FROM processor_state;

CREATE TRIGGER processor_state_created AFTER INSERT ON processor_state
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT CASE WHEN NEW.quarantine_time IS NULL THEN 'processor_state.created'
                ELSE 'processor_state.quarantined' END,
           'processor_state', id, payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM processor_state_payload WHERE processor = NEW.processor AND transcript = NEW.transcript;
END;

CREATE TRIGGER processor_state_updated AFTER UPDATE ON processor_state
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT CASE WHEN OLD.quarantine_time IS NULL AND NEW.quarantine_time IS NOT NULL
                THEN 'processor_state.quarantined' ELSE 'processor_state.updated' END,
           'processor_state', id, payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM processor_state_payload WHERE processor = NEW.processor AND transcript = NEW.transcript;
END;

-- ResetProcessorState deletes rows; the payload is the row as it was (the
-- view cannot see a deleted row, so the same keys are spelled out here).
CREATE TRIGGER processor_state_forgotten AFTER DELETE ON processor_state
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    VALUES ('processor_state.forgotten', 'processor_state', OLD.processor || '/' || OLD.transcript,
            json_object(
                'processor', OLD.processor,
                'transcript', OLD.transcript,
                'owner', OLD.owner,
                'processed_time', OLD.processed_time,
                'items', OLD.items,
                'content_hash', OLD.content_hash,
                'consecutive_failures', OLD.consecutive_failures,
                'last_error', OLD.last_error,
                'last_error_time', OLD.last_error_time,
                'quarantine_time', OLD.quarantine_time
            ),
            CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;

-- What the usage processor counted in one transcript. by_model maps a model
-- name to its counts: {"<model>": {"input_tokens": n, "output_tokens": n,
-- "cache_creation_input_tokens": n, "cache_read_input_tokens": n,
-- "messages": n}}. session_id is the agent's (a Session's agent_session_id);
-- events name the bosun session that carries it, when there is one.
CREATE TABLE transcript_usage (
    transcript     TEXT    PRIMARY KEY,
    owner          TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    by_model       TEXT    NOT NULL CHECK (json_valid(by_model)),
    processed_time INTEGER NOT NULL
);

CREATE INDEX transcript_usage_by_session ON transcript_usage (session_id);
CREATE INDEX transcript_usage_by_owner ON transcript_usage (owner, transcript);

CREATE VIEW transcript_usage_payload (id, payload) AS
SELECT transcript, json_object(
    'transcript', transcript,
    'owner', owner,
    'session_id', session_id,
    'by_model', json(by_model),
    'processed_time', processed_time
) FROM transcript_usage;

CREATE TRIGGER transcript_usage_created AFTER INSERT ON transcript_usage
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'transcript_usage.created', 'transcript_usage', NEW.transcript, s.project_id, s.id, p.payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM transcript_usage_payload p
    LEFT JOIN (SELECT id, project_id FROM sessions WHERE agent_session_id = NEW.session_id
               ORDER BY rowid DESC LIMIT 1) s
    WHERE p.id = NEW.transcript;
END;

CREATE TRIGGER transcript_usage_updated AFTER UPDATE ON transcript_usage
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'transcript_usage.updated', 'transcript_usage', NEW.transcript, s.project_id, s.id, p.payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM transcript_usage_payload p
    LEFT JOIN (SELECT id, project_id FROM sessions WHERE agent_session_id = NEW.session_id
               ORDER BY rowid DESC LIMIT 1) s
    WHERE p.id = NEW.transcript;
END;

-- What the tool_errors processor counted in one transcript: failed tool
-- results per tool ({"<tool>": n}), and how many bursts (runs of failures in
-- a row reaching the threshold) it has seen, so each burst is recorded as a
-- lesson once.
CREATE TABLE transcript_tool_errors (
    transcript     TEXT    PRIMARY KEY,
    owner          TEXT    NOT NULL,
    session_id     TEXT    NOT NULL,
    by_tool        TEXT    NOT NULL CHECK (json_valid(by_tool)),
    errors         INTEGER NOT NULL,
    bursts         INTEGER NOT NULL,
    processed_time INTEGER NOT NULL
);

CREATE VIEW transcript_tool_errors_payload (id, payload) AS
SELECT transcript, json_object(
    'transcript', transcript,
    'owner', owner,
    'session_id', session_id,
    'by_tool', json(by_tool),
    'errors', errors,
    'bursts', bursts,
    'processed_time', processed_time
) FROM transcript_tool_errors;

CREATE TRIGGER transcript_tool_errors_created AFTER INSERT ON transcript_tool_errors
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'transcript_tool_errors.created', 'transcript_tool_errors', NEW.transcript, s.project_id, s.id,
           p.payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM transcript_tool_errors_payload p
    LEFT JOIN (SELECT id, project_id FROM sessions WHERE agent_session_id = NEW.session_id
               ORDER BY rowid DESC LIMIT 1) s
    WHERE p.id = NEW.transcript;
END;

CREATE TRIGGER transcript_tool_errors_updated AFTER UPDATE ON transcript_tool_errors
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'transcript_tool_errors.updated', 'transcript_tool_errors', NEW.transcript, s.project_id, s.id,
           p.payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM transcript_tool_errors_payload p
    LEFT JOIN (SELECT id, project_id FROM sessions WHERE agent_session_id = NEW.session_id
               ORDER BY rowid DESC LIMIT 1) s
    WHERE p.id = NEW.transcript;
END;
