-- One notification per committed transaction, carrying the head it
-- committed, in place of one per appended row (0011).
--
-- Per-row notifications told a listening replica about a transaction's
-- first rows before its last ones had arrived: the replica published a
-- head inside that transaction, a caught-up Watch stream sent a progress
-- message there, and a client that persisted that cursor resumed in the
-- middle of the transaction. Now a deferred trigger runs at COMMIT for
-- each appended row and notifies the counter's value then, which is this
-- transaction's last seq; PostgreSQL delivers identical notifications of
-- one transaction once, so a listener sees exactly one seq per commit, and
-- every seq it sees is a transaction's end.
CREATE OR REPLACE FUNCTION change_log_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_log_head SET seq = seq + 1 RETURNING seq INTO NEW.seq;
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
    AFTER INSERT ON change_log
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION change_log_notify();
