-- Sessions (SPEC §6): the PostgreSQL port of migrations/0003_sessions.sql.
-- SQLite's 0/1 flags are booleans here and its JSON text columns are jsonb;
-- payloads render the same JSON values.

CREATE TABLE projects (
    id                   text             PRIMARY KEY,
    repo_path            text,
    origin_url           text,
    display_name         text             NOT NULL,
    register_time        bigint           NOT NULL,
    update_time          bigint,
    archive_time         bigint,
    coverage_threshold   double precision NOT NULL DEFAULT 0 CHECK (coverage_threshold BETWEEN 0 AND 100),
    plane                jsonb,
    required_ci_contexts jsonb            NOT NULL DEFAULT '[]',
    CHECK (repo_path IS NOT NULL OR origin_url IS NOT NULL)
);

CREATE VIEW projects_payload (id, payload) AS
SELECT id, jsonb_build_object(
    'id', id,
    'repo_path', repo_path,
    'origin_url', origin_url,
    'display_name', display_name,
    'register_time', register_time,
    'update_time', update_time,
    'archive_time', archive_time,
    'coverage_threshold', real_json(coverage_threshold),
    'plane', plane,
    'required_ci_contexts', required_ci_contexts
) FROM projects;

CREATE FUNCTION projects_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, payload)
    SELECT CASE WHEN TG_OP = 'INSERT' THEN 'project.created'
                WHEN OLD.archive_time IS NULL AND NEW.archive_time IS NOT NULL THEN 'project.archived'
                ELSE 'project.updated' END,
           'project', NEW.id, NEW.id, payload
    FROM projects_payload WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER projects_changed AFTER INSERT OR UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION projects_changed();

-- A session's id is "{project_id}-{number}"; numbers count up per project
-- and are never reused (sessions are never deleted). row_order stands for
-- SQLite's rowid (insertion order), which the transcript triggers of 0006
-- read; it is not part of the payload.
CREATE TABLE sessions (
    id                      text    PRIMARY KEY,
    project_id              text    NOT NULL REFERENCES projects (id),
    number                  bigint  NOT NULL,
    task_id                 bigint,
    role                    text    CHECK (role IN ('analyst', 'developer', 'reviewer', 'tester', 'deployer')),
    issue_id                text,
    harness                 text    NOT NULL CHECK (harness IN ('claude-code', 'codex', 'aider', 'opencode', 'other')),
    state                   text    NOT NULL CHECK (state IN ('not_started', 'working', 'idle', 'needs_input',
                                                              'stuck', 'detecting', 'done', 'terminated')),
    termination_reason      text    CHECK (termination_reason IN ('manually_killed', 'runtime_lost',
                                          'agent_process_exited', 'probe_failure', 'error_in_process',
                                          'auto_cleanup', 'pr_merged')),
    termination_detail      text,
    is_alive                boolean NOT NULL DEFAULT false,
    activity_state          text,
    activity_source         text,
    activity_time           bigint,
    detecting_attempts      bigint  NOT NULL DEFAULT 0,
    detecting_start_time    bigint,
    detecting_evidence_hash text,
    detecting_last_evidence text,
    branch                  text,
    workspace_path          text,
    runtime_handle_id       text,
    runtime_name            text,
    agent_session_id        text,
    prompt                  text,
    create_time             bigint  NOT NULL,
    update_time             bigint,
    start_time              bigint,
    end_time                bigint,
    restore_time            bigint,
    row_order               bigint  GENERATED ALWAYS AS IDENTITY,
    UNIQUE (project_id, number),
    CHECK ((state = 'terminated') = (termination_reason IS NOT NULL))
);

CREATE INDEX sessions_by_task ON sessions (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX sessions_by_state ON sessions (state);
CREATE INDEX sessions_by_branch ON sessions (project_id, branch);
CREATE INDEX sessions_by_agent_session ON sessions (agent_session_id, row_order)
    WHERE agent_session_id IS NOT NULL;

CREATE VIEW sessions_payload (id, payload) AS
SELECT id, jsonb_build_object(
    'id', id,
    'project_id', project_id,
    'task_id', task_id,
    'role', role,
    'issue_id', issue_id,
    'harness', harness,
    'state', state,
    'termination_reason', termination_reason,
    'termination_detail', termination_detail,
    'is_alive', is_alive,
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

CREATE FUNCTION sessions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, task_id, payload)
    SELECT CASE TG_OP WHEN 'INSERT' THEN 'session.created' ELSE 'session.updated' END,
           'session', NEW.id, NEW.project_id, NEW.id, NEW.task_id, payload
    FROM sessions_payload WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_changed AFTER INSERT OR UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_changed();

-- A session's current pull request; `comments` is the latest snapshot of
-- its review comments (a JSON array, replaced by each report).
CREATE TABLE pull_requests (
    session_id      text    PRIMARY KEY REFERENCES sessions (id),
    project_id      text    NOT NULL,
    url             text    NOT NULL,
    number          bigint  NOT NULL,
    state           text    NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    review_decision text    CHECK (review_decision IN ('review_required', 'approved', 'changes_requested')),
    ci_state        text    CHECK (ci_state IN ('none', 'pending', 'passing', 'failing')),
    mergeability    text    CHECK (mergeability IN ('mergeable', 'conflicting', 'blocked', 'unknown')),
    draft           boolean NOT NULL DEFAULT false,
    head_sha        text,
    branch          text,
    comments        jsonb   NOT NULL DEFAULT '[]',
    create_time     bigint  NOT NULL,
    update_time     bigint
);

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
    'comments', comments,
    'create_time', create_time,
    'update_time', update_time
) FROM pull_requests;

CREATE FUNCTION pull_requests_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload)
    SELECT CASE TG_OP WHEN 'INSERT' THEN 'pull_request.created' ELSE 'pull_request.updated' END,
           'pull_request', NEW.session_id, NEW.project_id, NEW.session_id, payload
    FROM pull_requests_payload WHERE session_id = NEW.session_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER pull_requests_changed AFTER INSERT OR UPDATE ON pull_requests
    FOR EACH ROW EXECUTE FUNCTION pull_requests_changed();

-- Every run of every CI check: one row per (session, check name, commit).
CREATE TABLE checks (
    id                  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    session_id          text   NOT NULL REFERENCES sessions (id),
    project_id          text   NOT NULL,
    pull_request_number bigint NOT NULL,
    name                text   NOT NULL,
    commit_sha          text   NOT NULL,
    status              text   NOT NULL CHECK (status IN ('pending', 'passed', 'failed', 'cancelled', 'skipped')),
    url                 text,
    log_tail            text,
    create_time         bigint NOT NULL,
    update_time         bigint,
    UNIQUE (session_id, name, commit_sha)
);

CREATE VIEW checks_payload (id, payload) AS
SELECT id, jsonb_build_object(
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

CREATE FUNCTION checks_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload)
    SELECT CASE TG_OP WHEN 'INSERT' THEN 'check.recorded' ELSE 'check.updated' END,
           'check', NEW.id::text, NEW.project_id, NEW.session_id, payload
    FROM checks_payload WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER checks_changed AFTER INSERT OR UPDATE ON checks
    FOR EACH ROW EXECUTE FUNCTION checks_changed();

-- Reactions: durable nudges and notices; at most one open per session and key.
CREATE TABLE reactions (
    id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    session_id    text   NOT NULL REFERENCES sessions (id),
    project_id    text   NOT NULL,
    key           text   NOT NULL,
    priority      text   NOT NULL CHECK (priority IN ('urgent', 'action', 'info')),
    target        text   NOT NULL CHECK (target IN ('agent', 'human')),
    status        text   NOT NULL CHECK (status IN ('pending', 'escalated', 'cleared')),
    message       text   NOT NULL,
    nudge_count   bigint NOT NULL DEFAULT 0,
    dedup_key     text,
    create_time   bigint NOT NULL,
    update_time   bigint,
    nudge_time    bigint,
    escalate_time bigint,
    clear_time    bigint
);

CREATE UNIQUE INDEX reactions_one_open ON reactions (session_id, key) WHERE status IN ('pending', 'escalated');
CREATE INDEX reactions_open_by_key ON reactions (key, create_time) WHERE status = 'pending';

CREATE VIEW reactions_payload (id, payload) AS
SELECT id, jsonb_build_object(
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

CREATE FUNCTION reactions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload)
    SELECT 'reaction.' || NEW.key, 'reaction', NEW.id::text, NEW.project_id, NEW.session_id, payload
    FROM reactions_payload WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER reactions_changed AFTER INSERT OR UPDATE ON reactions
    FOR EACH ROW EXECUTE FUNCTION reactions_changed();
