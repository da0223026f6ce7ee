-- Webhook fidelity (repository identity, stale pull request reports): the
-- PostgreSQL port of migrations/0007_webhook_fidelity.sql.

-- When the forge last updated each session's pull request, as the newest
-- applied ReportPullRequest said (observed_time): a report older than it is
-- stale and writes nothing. Not part of the pull request's payload, so
-- recording it appends no event.
CREATE TABLE pull_request_observations (
    session_id    text   PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    observed_time bigint NOT NULL
);

-- Repository identity is "owner/name" in lowercase (GitHub and Gitea compare
-- names without regard to case); rows stored before in another case are
-- brought to it. A row whose lowercase spelling already exists keeps its
-- spelling (history only: lookups use the lowercase one).
--
-- SQLite runs `UPDATE OR IGNORE ... SET repo = lower(repo)`: row by row in
-- rowid order, skipping a row whose new spelling would break a unique
-- constraint (tasks_open_branch, ci_statuses' (repo, sha, context),
-- deploy_freezes' key). PostgreSQL has no OR IGNORE, so each row is updated
-- on its own in the same order and a unique violation skips it; the update
-- triggers append the same events in the same order. lower() under the "C"
-- collation folds ASCII letters only, like SQLite's lower() and RepoId.
-- deploy_freezes has no rowid here: create_time, then repo, stands for
-- insertion order (it only decides which of two colliding spellings is
-- lowered; freezes append no event on update).
DO $$
DECLARE
    row_id bigint;
    row_repo text;
BEGIN
    FOR row_id IN SELECT id FROM tasks WHERE repo <> lower(repo COLLATE "C") ORDER BY id LOOP
        BEGIN
            UPDATE tasks SET repo = lower(repo COLLATE "C") WHERE id = row_id;
        EXCEPTION WHEN unique_violation THEN NULL;
        END;
    END LOOP;
    FOR row_id IN SELECT id FROM ci_statuses WHERE repo <> lower(repo COLLATE "C") ORDER BY id LOOP
        BEGIN
            UPDATE ci_statuses SET repo = lower(repo COLLATE "C") WHERE id = row_id;
        EXCEPTION WHEN unique_violation THEN NULL;
        END;
    END LOOP;
    FOR row_repo IN SELECT repo FROM deploy_freezes WHERE repo <> lower(repo COLLATE "C")
                    ORDER BY create_time, repo COLLATE "C" LOOP
        BEGIN
            UPDATE deploy_freezes SET repo = lower(repo COLLATE "C") WHERE repo = row_repo;
        EXCEPTION WHEN unique_violation THEN NULL;
        END;
    END LOOP;
END
$$;
