-- One notification per committed transaction, carrying the head it
-- committed, in place of one per appended row (0011).
--
-- Per-row notifications told a listening replica about a transaction's
-- first rows before its last ones had arrived: the replica published a
-- head inside that transaction, a caught-up Watch stream sent a progress
-- message there, and a client that persisted that cursor resumed in the
-- middle of the transaction.
--
-- Now each append also stamps the counter row with its transaction's id,
-- and a deferred trigger on the counter row, which fires only for the
-- transaction's first append (the one that changes the stamp), runs at
-- COMMIT and notifies the counter's value then: this transaction's last
-- seq. Once per transaction, so a commit of many rows costs one trigger
-- call, not one per row.
ALTER TABLE change_log_head ADD COLUMN xact bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION change_log_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_log_head SET seq = seq + 1, xact = txid_current() RETURNING seq INTO NEW.seq;
    NEW.create_time := floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    RETURN NEW;
END
$$;

CREATE FUNCTION change_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bosun_change_log', (SELECT seq FROM change_log_head)::text);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER change_log_notify
    AFTER UPDATE ON change_log_head
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.xact IS DISTINCT FROM NEW.xact)
    EXECUTE FUNCTION change_log_notify();
