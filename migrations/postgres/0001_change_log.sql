-- The change log (SPEC §4) and the shared idempotency records: the PostgreSQL
-- port of migrations/0001_change_log.sql. Same tables, same trigger pattern:
--   1. a view `<table>_payload(id, payload)` renders a row as JSON, with the
--      row's column names as keys (the shape is defined once, in SQL, and is
--      the same shape SQLite's views render);
--   2. AFTER INSERT / UPDATE (/ DELETE) row triggers append one row to
--      change_log, selecting the payload from that view.
--
-- SEQ IN COMMIT ORDER WITH MANY WRITERS. SQLite has one writer, so its
-- AUTOINCREMENT seq is gapless in commit order. PostgreSQL has concurrent
-- writers on several replicas, and a SEQUENCE would break the promise: a
-- sequence value is taken before commit, so a transaction that commits later
-- can hold a smaller seq, and a reader that already moved past it never sees
-- it (kine #759 and #220). Here seq is not a sequence: the BEFORE INSERT
-- trigger on change_log takes it from the one row of change_log_head with an
-- UPDATE, which holds that row's lock until the transaction ends. So:
--   - appends are serialized: a second transaction's first append waits
--     until the first commits (it then reads the committed counter and goes
--     on with the next value) or rolls back (the counter update is undone
--     with it, so no seq is lost: gapless);
--   - PostgreSQL makes a transaction visible before it releases its locks,
--     so when transaction B gets seq n+1, the transaction holding n is
--     already visible to every new snapshot: any reader that sees n+1 sees
--     n. Seq order is commit order, and a reader polling `seq > last` never
--     skips one;
--   - one transaction's events are contiguous (it holds the lock from its
--     first append to its end).
-- The cost: transactions that write events run their write phases one at a
-- time across all replicas (from their first event to their commit), like
-- SQLite's single writer; keep write transactions short. Writers must use
-- READ COMMITTED (the default): under REPEATABLE READ or SERIALIZABLE a
-- waiting append fails with a serialization error (40001), to be retried. Two
-- transactions that lock the same rows in different orders can deadlock on
-- the counter; PostgreSQL aborts one (40P01), also to be retried.
-- Compaction deletes old rows, never the counter: a seq is never reused.
-- Each append also NOTIFYs channel bosun_change_log with an empty payload;
-- PostgreSQL folds identical notifications of one transaction into one and
-- delivers it at commit (the wake-up for Watch streams; the table stays the
-- source of truth).

CREATE TABLE change_log (
    seq         bigint PRIMARY KEY, -- set by change_log_append, never by the writer
    event_type  text   NOT NULL,
    entity_kind text   NOT NULL,
    entity_id   text   NOT NULL,
    project_id  text,
    session_id  text,
    task_id     bigint,
    payload     jsonb  NOT NULL,
    create_time bigint NOT NULL -- unix microseconds, set by change_log_append
);

CREATE INDEX change_log_by_project ON change_log (project_id, seq) WHERE project_id IS NOT NULL;
CREATE INDEX change_log_by_session ON change_log (session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX change_log_by_task ON change_log (task_id, seq) WHERE task_id IS NOT NULL;
CREATE INDEX change_log_by_time ON change_log (create_time);

-- The newest seq ever given out by a committed transaction. Exactly one row.
CREATE TABLE change_log_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq      bigint  NOT NULL CHECK (seq >= 0)
);
INSERT INTO change_log_head (seq) VALUES (0);

CREATE FUNCTION change_log_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_log_head SET seq = seq + 1 RETURNING seq INTO NEW.seq;
    NEW.create_time := floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    PERFORM pg_notify('bosun_change_log', '');
    RETURN NEW;
END
$$;

CREATE TRIGGER change_log_append BEFORE INSERT ON change_log
    FOR EACH ROW EXECUTE FUNCTION change_log_append();

-- A REAL column as SQLite's json_object renders it: integral values keep a
-- ".0" (50.0, not 50), so payloads decode to the same JSON values.
CREATE FUNCTION real_json(value double precision) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN value IS NULL THEN 'null'::jsonb
        WHEN value = trunc(value) AND abs(value) < 1e15 THEN (trunc(value)::bigint::text || '.0')::jsonb
        ELSE to_jsonb(value) END
$$;

-- Results of calls made with a request_id (SPEC §3): a repeat with the same
-- id returns the stored result and changes nothing. `fingerprint` is a digest
-- of the request, so reusing an id for a different request is refused.
CREATE TABLE idempotency_keys (
    scope       text   NOT NULL, -- the RPC, e.g. 'lessons.record'
    request_id  text   NOT NULL,
    fingerprint text   NOT NULL,
    result      jsonb  NOT NULL,
    create_time bigint NOT NULL, -- unix microseconds
    PRIMARY KEY (scope, request_id)
);

CREATE INDEX idempotency_keys_by_time ON idempotency_keys (create_time);
