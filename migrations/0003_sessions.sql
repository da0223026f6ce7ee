-- Sessions (SPEC §6): projects, agent sessions, their pull requests, CI check
-- runs and reactions. Each table feeds change_log through triggers (the
-- pattern of 0001): <table>_payload renders a row as JSON with the column
-- names as keys.

CREATE TABLE projects (
    id                   TEXT    PRIMARY KEY,
    repo_path            TEXT,
    origin_url           TEXT,
    display_name         TEXT    NOT NULL,
    register_time        INTEGER NOT NULL,
    update_time          INTEGER,
    archive_time         INTEGER,
    coverage_threshold   REAL    NOT NULL DEFAULT 0 CHECK (coverage_threshold BETWEEN 0 AND 100),
    plane                TEXT    CHECK (plane IS NULL OR json_valid(plane)),
    required_ci_contexts TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(required_ci_contexts)),
    CHECK (repo_path IS NOT NULL OR origin_url IS NOT NULL)
);

CREATE VIEW projects_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'repo_path', repo_path,
    'origin_url', origin_url,
    'display_name', display_name,
    'register_time', register_time,
    'update_time', update_time,
    'archive_time', archive_time,
    'coverage_threshold', coverage_threshold,
    'plane', json(plane),
    'required_ci_contexts', json(required_ci_contexts)
) FROM projects;

CREATE TRIGGER projects_created AFTER INSERT ON projects
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, payload, create_time)
    SELECT 'project.created', 'project', NEW.id, NEW.id, payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM projects_payload WHERE id = NEW.id;
END;

CREATE TRIGGER projects_updated AFTER UPDATE ON projects
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, payload, create_time)
    SELECT CASE WHEN OLD.archive_time IS NULL AND NEW.archive_time IS NOT NULL
                THEN 'project.archived' ELSE 'project.updated' END,
           'project', NEW.id, NEW.id, payload, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM projects_payload WHERE id = NEW.id;
END;

-- A session's id is "{project_id}-{number}"; numbers count up per project
-- and are never reused (sessions are never deleted).
CREATE TABLE sessions (
    id                      TEXT    PRIMARY KEY,
    project_id              TEXT    NOT NULL REFERENCES projects (id),
    number                  INTEGER NOT NULL,
    task_id                 INTEGER,
    role                    TEXT    CHECK (role IN ('analyst', 'developer', 'reviewer', 'tester', 'deployer')),
    issue_id                TEXT,
    harness                 TEXT    NOT NULL CHECK (harness IN ('claude-code', 'codex', 'aider', 'opencode', 'other')),
    state                   TEXT    NOT NULL CHECK (state IN ('not_started', 'working', 'idle', 'needs_input',
                                                              'stuck', 'detecting', 'done', 'terminated')),
    termination_reason      TEXT    CHECK (termination_reason IN ('manually_killed', 'runtime_lost',
                                          'agent_process_exited', 'probe_failure', 'error_in_process',
                                          'auto_cleanup', 'pr_merged')),
    termination_detail      TEXT,
    is_alive                INTEGER NOT NULL DEFAULT 0 CHECK (is_alive IN (0, 1)),
    activity_state          TEXT,
    activity_source         TEXT,
    activity_time           INTEGER,
    detecting_attempts      INTEGER NOT NULL DEFAULT 0,
    detecting_start_time    INTEGER,
    detecting_evidence_hash TEXT,
    detecting_last_evidence TEXT,
    branch                  TEXT,
    workspace_path          TEXT,
    runtime_handle_id       TEXT,
    runtime_name            TEXT,
    agent_session_id        TEXT,
    prompt                  TEXT,
    create_time             INTEGER NOT NULL,
    update_time             INTEGER,
    start_time              INTEGER,
    end_time                INTEGER,
    restore_time            INTEGER,
    UNIQUE (project_id, number),
    CHECK ((state = 'terminated') = (termination_reason IS NOT NULL))
);

CREATE INDEX sessions_by_task ON sessions (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX sessions_by_state ON sessions (state);
CREATE INDEX sessions_by_branch ON sessions (project_id, branch);
CREATE INDEX sessions_by_agent_session ON sessions (agent_session_id) WHERE agent_session_id IS NOT NULL;

CREATE VIEW sessions_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'project_id', project_id,
    'task_id', task_id,
    'role', role,
    'issue_id', issue_id,
    'harness', harness,
    'state', state,
    'termination_reason', termination_reason,
    'termination_detail', termination_detail,
    'is_alive', CASE WHEN is_alive THEN json('true') ELSE json('false') END,
    'activity_state', activity_state,
    'activity_source', activity_source,
    'activity_time', activity_time,
    'detecting_attempts', detecting_attempts,
    'detecting_start_time', detecting_start_time,
    'detecting_evidence_hash', detecting_evidence_hash,
    'detecting_last_evidence', detecting_last_evidence,
    'branch', branch,
    'workspace_path', workspace_path,
    'runtime_handle_id', runtime_handle_id,
    'runtime_name', runtime_name,
    'agent_session_id', agent_session_id,
    'prompt', prompt,
    'create_time', create_time,
    'update_time', update_time,
    'start_time', start_time,
    'end_time', end_time,
    'restore_time', restore_time
) FROM sessions;

CREATE TRIGGER sessions_created AFTER INSERT ON sessions
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, task_id, payload, create_time)
    SELECT 'session.created', 'session', NEW.id, NEW.project_id, NEW.id, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM sessions_payload WHERE id = NEW.id;
END;

CREATE TRIGGER sessions_updated AFTER UPDATE ON sessions
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, task_id, payload, create_time)
    SELECT 'session.updated', 'session', NEW.id, NEW.project_id, NEW.id, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM sessions_payload WHERE id = NEW.id;
END;

-- A session's current pull request; `comments` is the latest snapshot of
-- its review comments (a JSON array, replaced by each report).
CREATE TABLE pull_requests (
    session_id      TEXT    PRIMARY KEY REFERENCES sessions (id),
    project_id      TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    number          INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    review_decision TEXT    CHECK (review_decision IN ('review_required', 'approved', 'changes_requested')),
    ci_state        TEXT    CHECK (ci_state IN ('none', 'pending', 'passing', 'failing')),
    mergeability    TEXT    CHECK (mergeability IN ('mergeable', 'conflicting', 'blocked', 'unknown')),
    draft           INTEGER NOT NULL DEFAULT 0 CHECK (draft IN (0, 1)),
    head_sha        TEXT,
    branch          TEXT,
    comments        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(comments)),
    create_time     INTEGER NOT NULL,
    update_time     INTEGER
);

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
    'comments', json(comments),
    'create_time', create_time,
    'update_time', update_time
) FROM pull_requests;

CREATE TRIGGER pull_requests_created AFTER INSERT ON pull_requests
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'pull_request.created', 'pull_request', NEW.session_id, NEW.project_id, NEW.session_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM pull_requests_payload WHERE session_id = NEW.session_id;
END;

CREATE TRIGGER pull_requests_updated AFTER UPDATE ON pull_requests
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'pull_request.updated', 'pull_request', NEW.session_id, NEW.project_id, NEW.session_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM pull_requests_payload WHERE session_id = NEW.session_id;
END;

-- Every run of every CI check: one row per (session, check name, commit).
CREATE TABLE checks (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id          TEXT    NOT NULL REFERENCES sessions (id),
    project_id          TEXT    NOT NULL,
    pull_request_number INTEGER NOT NULL,
    name                TEXT    NOT NULL,
    commit_sha          TEXT    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN ('pending', 'passed', 'failed', 'cancelled', 'skipped')),
    url                 TEXT,
    log_tail            TEXT,
    create_time         INTEGER NOT NULL,
    update_time         INTEGER,
    UNIQUE (session_id, name, commit_sha)
);

CREATE VIEW checks_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'session_id', session_id,
    'project_id', project_id,
    'pull_request_number', pull_request_number,
    'name', name,
    'commit_sha', commit_sha,
    'status', status,
    'url', url,
    'log_tail', log_tail,
    'create_time', create_time,
    'update_time', update_time
) FROM checks;

CREATE TRIGGER checks_created AFTER INSERT ON checks
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'check.recorded', 'check', NEW.id, NEW.project_id, NEW.session_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM checks_payload WHERE id = NEW.id;
END;

CREATE TRIGGER checks_updated AFTER UPDATE ON checks
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'check.updated', 'check', NEW.id, NEW.project_id, NEW.session_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM checks_payload WHERE id = NEW.id;
END;

-- Reactions: durable nudges and notices; at most one open per session and key.
CREATE TABLE reactions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id    TEXT    NOT NULL REFERENCES sessions (id),
    project_id    TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    priority      TEXT    NOT NULL CHECK (priority IN ('urgent', 'action', 'info')),
    target        TEXT    NOT NULL CHECK (target IN ('agent', 'human')),
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'escalated', 'cleared')),
    message       TEXT    NOT NULL,
    nudge_count   INTEGER NOT NULL DEFAULT 0,
    dedup_key     TEXT,
    create_time   INTEGER NOT NULL,
    update_time   INTEGER,
    nudge_time    INTEGER,
    escalate_time INTEGER,
    clear_time    INTEGER
);

CREATE UNIQUE INDEX reactions_one_open ON reactions (session_id, key) WHERE status IN ('pending', 'escalated');
CREATE INDEX reactions_open_by_key ON reactions (key, create_time) WHERE status = 'pending';

CREATE VIEW reactions_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'session_id', session_id,
    'project_id', project_id,
    'key', key,
    'priority', priority,
    'target', target,
    'status', status,
    'message', message,
    'nudge_count', nudge_count,
    'dedup_key', dedup_key,
    'create_time', create_time,
    'update_time', update_time,
    'nudge_time', nudge_time,
    'escalate_time', escalate_time,
    'clear_time', clear_time
) FROM reactions;

CREATE TRIGGER reactions_created AFTER INSERT ON reactions
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'reaction.' || NEW.key, 'reaction', NEW.id, NEW.project_id, NEW.session_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM reactions_payload WHERE id = NEW.id;
END;

CREATE TRIGGER reactions_updated AFTER UPDATE ON reactions
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'reaction.' || NEW.key, 'reaction', NEW.id, NEW.project_id, NEW.session_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM reactions_payload WHERE id = NEW.id;
END;
