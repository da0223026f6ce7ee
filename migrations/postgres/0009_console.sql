-- Operator console (issue 17): the PostgreSQL port of
-- migrations/0009_console.sql. The pull request's title, which ListSessions'
-- search matches, and an index for listing sessions by latest activity.

ALTER TABLE pull_requests ADD COLUMN title text;

-- pull_requests_changed() selects from this view by name at run time, so the
-- view can be dropped and made again with the new key.
DROP VIEW pull_requests_payload;

CREATE VIEW pull_requests_payload (session_id, payload) AS
SELECT session_id, jsonb_build_object(
    'session_id', session_id,
    'project_id', project_id,
    'url', url,
    'number', number,
    'state', state,
    'review_decision', review_decision,
    'ci_state', ci_state,
    'mergeability', mergeability,
    'draft', draft,
    'head_sha', head_sha,
    'branch', branch,
    'title', title,
    'comments', comments,
    'create_time', create_time,
    'update_time', update_time
) FROM pull_requests;

-- SESSION_ORDER_LAST_ACTIVITY: SQLite's MAX(create_time, COALESCE(update_time,
-- 0), COALESCE(activity_time, 0)). create_time is NOT NULL, so GREATEST
-- (which skips NULLs where MAX would return NULL) gives the same value.
CREATE INDEX sessions_by_last_activity
    ON sessions ((GREATEST(create_time, COALESCE(update_time, 0), COALESCE(activity_time, 0))) DESC);

CREATE INDEX pull_requests_by_number ON pull_requests (number);

-- TASK_ORDER_UPDATE_TIME.
CREATE INDEX tasks_by_update_time ON tasks (update_time DESC, id DESC);
