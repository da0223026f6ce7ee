-- The counter row is updated twice per appending transaction, not once per
-- appended row, and a commit notifies once, with its last seq, in place of
-- one notification per row (0011).
--
-- Why. Per-row notifications told a listening replica about a transaction's
-- first rows before its last ones had arrived: the replica published a head
-- inside that transaction, a caught-up Watch stream sent a progress message
-- there, and a client that persisted that cursor resumed in the middle of
-- the transaction. And every append updated the counter row: a transaction
-- of 48 appends left 48 versions of that one row, which each later update
-- in the transaction stepped over, so appends got slower the more a
-- transaction held.
--
-- How. A transaction's first append takes the next seq from the counter row
-- as before (locking the row until the transaction ends, which is what
-- keeps seq gapless and in commit order across replicas), stamps the row
-- with the transaction's id, and keeps its seq in the transaction-local
-- setting bosun.seq. Later appends of the same transaction count on from
-- that setting without touching the row. The stamp changing fires a
-- deferred trigger once per transaction; at COMMIT it writes the last seq
-- to the counter row and notifies it.
--
-- Savepoints: a rolled-back subtransaction undoes its appends, its counter
-- update (with the trigger it queued) and its changes to bosun.seq alike,
-- so the next append counts on from what the transaction still holds.
--
-- Nothing in bosun sets this constraint IMMEDIATE. A session that did would
-- run the trigger at its first append and leave the counter at that seq;
-- the next transaction's first seq would then collide with change_log's
-- primary key and fail, never reuse a seq.
ALTER TABLE change_log_head ADD COLUMN xact bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION change_log_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last text := current_setting('bosun.seq', true);
BEGIN
    IF last IS NULL OR last = '' THEN
        UPDATE change_log_head SET seq = seq + 1, xact = txid_current() RETURNING seq INTO NEW.seq;
    ELSE
        NEW.seq := last::bigint + 1;
    END IF;
    PERFORM set_config('bosun.seq', NEW.seq::text, true);
    NEW.create_time := floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    RETURN NEW;
END
$$;

-- The counter row changes its stamp only at a transaction's first append,
-- so this runs once per appending transaction, at COMMIT. Its own update
-- keeps the stamp and so fires nothing.
CREATE FUNCTION change_log_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last text := current_setting('bosun.seq', true);
BEGIN
    IF last IS NOT NULL AND last <> '' THEN
        UPDATE change_log_head SET seq = last::bigint;
    END IF;
    PERFORM pg_notify('bosun_change_log', (SELECT seq FROM change_log_head)::text);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER change_log_commit
    AFTER UPDATE ON change_log_head
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.xact IS DISTINCT FROM NEW.xact)
    EXECUTE FUNCTION change_log_commit();
