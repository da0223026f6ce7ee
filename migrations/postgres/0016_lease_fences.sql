-- Fencing tokens for background leases (src/storage/fence.rs).
--
-- A lease is a session advisory lock on a connection of its own. When that
-- connection ends while its replica lives (the server terminated it, a proxy
-- dropped it), the lock is free and another replica may take the job before
-- the first notices. Each time a replica takes a lease it counts the job's
-- generation up here, and every write of the pass checks, in its own
-- transaction and holding the row FOR SHARE, that the generation is still
-- the one its lease took. The count up waits for any such transaction of
-- the old holder to end, and every later check of the old holder sees the
-- new generation and fails: the two holders' writes never interleave.
--
-- PostgreSQL only: on SQLite one process owns the database.
CREATE TABLE lease_fences (
    job TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);
