-- Operator console (issue 17): the pull request's title, which ListSessions'
-- search matches, and an index for listing sessions by latest activity.

ALTER TABLE pull_requests ADD COLUMN title TEXT;

DROP VIEW pull_requests_payload;

CREATE VIEW pull_requests_payload (session_id, payload) AS
SELECT session_id, json_object(
    'session_id', session_id,
    'project_id', project_id,
    'url', url,
    'number', number,
    'state', state,
    'review_decision', review_decision,
    'ci_state', ci_state,
    'mergeability', mergeability,
    'draft', CASE WHEN draft THEN json('true') ELSE json('false') END,
    'head_sha', head_sha,
    'branch', branch,
    'title', title,
    'comments', json(comments),
    'create_time', create_time,
    'update_time', update_time
) FROM pull_requests;

-- SESSION_ORDER_LAST_ACTIVITY: the same expression as the store's ORDER BY.
CREATE INDEX sessions_by_last_activity
    ON sessions (MAX(create_time, COALESCE(update_time, 0), COALESCE(activity_time, 0)) DESC);

CREATE INDEX pull_requests_by_number ON pull_requests (number);

-- TASK_ORDER_UPDATE_TIME.
CREATE INDEX tasks_by_update_time ON tasks (update_time DESC, id DESC);
