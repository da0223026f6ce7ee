-- The change log (SPEC §4) and the shared idempotency records.
--
-- THE TRIGGER PATTERN. Every table that holds state feeds change_log through
-- triggers, so no write path can forget an event:
--   1. a view `<table>_payload(id, payload)` renders a row as JSON, with the
--      row's column names as keys (the shape is defined once, in SQL);
--   2. AFTER INSERT / AFTER UPDATE (/ AFTER DELETE) triggers append one row
--      to change_log, selecting the payload from that view, with event_type
--      '<kind>.created' / '<kind>.updated' / '<kind>.deleted' (or a finer verb).
-- The trigger runs inside the writing transaction: the event commits with the
-- change or not at all. bosun has one writer, so seq is gapless in commit
-- order (AUTOINCREMENT never reuses a seq, even after compaction).

CREATE TABLE change_log (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type  TEXT    NOT NULL,
    entity_kind TEXT    NOT NULL,
    entity_id   TEXT    NOT NULL,
    project_id  TEXT,
    session_id  TEXT,
    task_id     INTEGER,
    payload     TEXT    NOT NULL CHECK (json_valid(payload)),
    create_time INTEGER NOT NULL -- unix microseconds
);

CREATE INDEX change_log_by_project ON change_log (project_id, seq) WHERE project_id IS NOT NULL;
CREATE INDEX change_log_by_session ON change_log (session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX change_log_by_task ON change_log (task_id, seq) WHERE task_id IS NOT NULL;
CREATE INDEX change_log_by_time ON change_log (create_time);

-- Results of calls made with a request_id (SPEC §3): a repeat with the same
-- id returns the stored result and changes nothing. `fingerprint` is a digest
-- of the request, so reusing an id for a different request is refused.
CREATE TABLE idempotency_keys (
    scope       TEXT    NOT NULL, -- the RPC, e.g. 'lessons.record'
    request_id  TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    result      TEXT    NOT NULL CHECK (json_valid(result)),
    create_time INTEGER NOT NULL, -- unix microseconds
    PRIMARY KEY (scope, request_id)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_time ON idempotency_keys (create_time);
