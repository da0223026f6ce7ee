-- Each append's notification carries its seq, so a replica listening on
-- bosun_change_log learns the committed head from the notifications
-- themselves (PostgreSQL delivers them only after COMMIT, in commit order)
-- instead of re-reading change_log_head after every wake-up. The table
-- stays the truth: a lost notification only delays a wake-up until the
-- listener's periodic re-read. (PostgreSQL only: SQLite has one writer
-- per data dir, which publishes its own commits.)
CREATE OR REPLACE FUNCTION change_log_append() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_log_head SET seq = seq + 1 RETURNING seq INTO NEW.seq;
    NEW.create_time := floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    PERFORM pg_notify('bosun_change_log', NEW.seq::text);
    RETURN NEW;
END
$$;
