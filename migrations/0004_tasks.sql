-- Tasks (SPEC §7): the delivery pipeline and the facts its gates read. Each
-- table feeds change_log through triggers (the pattern of 0001).

CREATE TABLE tasks (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id             TEXT    NOT NULL REFERENCES projects (id),
    tracker_issue_id       TEXT    NOT NULL UNIQUE,
    work_item_id           TEXT    NOT NULL,
    title                  TEXT    NOT NULL DEFAULT '',
    repo                   TEXT    NOT NULL,
    branch                 TEXT    NOT NULL,
    stage                  TEXT    NOT NULL CHECK (stage IN ('analysis', 'development', 'review', 'testing',
                                                             'deploy', 'done')),
    head_sha               TEXT,
    rollback_count         INTEGER NOT NULL DEFAULT 0,
    transient_retries      INTEGER NOT NULL DEFAULT 0,
    hold_reason            TEXT    CHECK (hold_reason IN ('rollback_limit', 'retry_budget_exhausted',
                                                          'merge_unverified', 'deploy_degraded')),
    hold_detail            TEXT,
    hold_time              INTEGER,
    stage_session_id       TEXT    REFERENCES sessions (id),
    -- 1 once the stage session was reported finished through AdvanceTask.
    stage_session_finished INTEGER NOT NULL DEFAULT 0 CHECK (stage_session_finished IN (0, 1)),
    last_gate              TEXT    CHECK (last_gate IS NULL OR json_valid(last_gate)),
    create_time            INTEGER NOT NULL,
    update_time            INTEGER NOT NULL,
    stage_enter_time       INTEGER NOT NULL,
    CHECK ((hold_reason IS NULL) = (hold_time IS NULL))
);

-- One open task per repository branch (BRANCH_IN_USE).
CREATE UNIQUE INDEX tasks_open_branch ON tasks (repo, branch) WHERE stage <> 'done';
CREATE INDEX tasks_by_head_sha ON tasks (repo, head_sha) WHERE head_sha IS NOT NULL;
CREATE INDEX tasks_by_stage ON tasks (repo, stage);
CREATE INDEX tasks_by_project ON tasks (project_id, id);

-- A task as the API shows it. stage_session_active is derived: the stage
-- session exists, was not reported finished and is not done or terminated.
CREATE VIEW tasks_payload (id, payload) AS
SELECT t.id, json_object(
    'id', t.id,
    'project_id', t.project_id,
    'tracker_issue_id', t.tracker_issue_id,
    'work_item_id', t.work_item_id,
    'title', t.title,
    'repo', t.repo,
    'branch', t.branch,
    'stage', t.stage,
    'head_sha', t.head_sha,
    'rollback_count', t.rollback_count,
    'transient_retries', t.transient_retries,
    'hold_reason', t.hold_reason,
    'hold_detail', t.hold_detail,
    'hold_time', t.hold_time,
    'stage_session_id', t.stage_session_id,
    'stage_session_finished', CASE WHEN t.stage_session_finished THEN json('true') ELSE json('false') END,
    'stage_session_active', CASE
        WHEN t.stage_session_id IS NOT NULL AND NOT t.stage_session_finished
             AND s.state NOT IN ('done', 'terminated') THEN json('true')
        ELSE json('false') END,
    'last_gate', json(t.last_gate),
    'create_time', t.create_time,
    'update_time', t.update_time,
    'stage_enter_time', t.stage_enter_time
) FROM tasks t LEFT JOIN sessions s ON s.id = t.stage_session_id;

CREATE TRIGGER tasks_created AFTER INSERT ON tasks
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, task_id, payload, create_time)
    SELECT 'task.created', 'task', NEW.id, NEW.project_id, NEW.stage_session_id, NEW.id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM tasks_payload WHERE id = NEW.id;
END;

-- Finer verbs for what subscribers most want to see: held, released, a new
-- stage; anything else is task.updated.
CREATE TRIGGER tasks_updated AFTER UPDATE ON tasks
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, task_id, payload, create_time)
    SELECT CASE
               WHEN OLD.hold_reason IS NULL AND NEW.hold_reason IS NOT NULL THEN 'task.held'
               WHEN OLD.hold_reason IS NOT NULL AND NEW.hold_reason IS NULL THEN 'task.released'
               WHEN OLD.stage <> NEW.stage THEN 'task.stage_changed'
               ELSE 'task.updated' END,
           'task', NEW.id, NEW.project_id, NEW.stage_session_id, NEW.id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM tasks_payload WHERE id = NEW.id;
END;

-- The newest state per (repo, sha, context), whether or not it resolved to a task.
CREATE TABLE ci_statuses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repo        TEXT    NOT NULL,
    sha         TEXT    NOT NULL,
    branch      TEXT,
    context     TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'success', 'failure', 'error')),
    target_url  TEXT,
    description TEXT,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    UNIQUE (repo, sha, context)
);

CREATE VIEW ci_statuses_payload (id, payload) AS
SELECT id, json_object(
    'repo', repo,
    'sha', sha,
    'branch', branch,
    'context', context,
    'state', state,
    'target_url', target_url,
    'description', description,
    'create_time', create_time,
    'update_time', update_time
) FROM ci_statuses;

CREATE TRIGGER ci_statuses_created AFTER INSERT ON ci_statuses
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT 'ci_status.recorded', 'ci_status', NEW.repo || '@' || NEW.sha || '/' || NEW.context, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM ci_statuses_payload WHERE id = NEW.id;
END;

CREATE TRIGGER ci_statuses_updated AFTER UPDATE ON ci_statuses
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, payload, create_time)
    SELECT 'ci_status.updated', 'ci_status', NEW.repo || '@' || NEW.sha || '/' || NEW.context, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM ci_statuses_payload WHERE id = NEW.id;
END;

CREATE TABLE verdicts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    decision    TEXT    NOT NULL CHECK (decision IN ('approved', 'rejected')),
    source      TEXT    NOT NULL CHECK (source IN ('tracker', 'pr_review')),
    author      TEXT,
    comment     TEXT,
    stage       TEXT    NOT NULL,
    create_time INTEGER NOT NULL
);
CREATE INDEX verdicts_by_task ON verdicts (task_id, id);

CREATE VIEW verdicts_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'task_id', task_id,
    'decision', decision,
    'source', source,
    'author', author,
    'comment', comment,
    'stage', stage,
    'create_time', create_time
) FROM verdicts;

CREATE TRIGGER verdicts_created AFTER INSERT ON verdicts
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, task_id, payload, create_time)
    SELECT 'verdict.recorded', 'verdict', NEW.id, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM verdicts_payload WHERE id = NEW.id;
END;

CREATE TABLE test_reports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id          INTEGER NOT NULL REFERENCES tasks (id),
    passed           INTEGER NOT NULL CHECK (passed IN (0, 1)),
    coverage_percent REAL    NOT NULL CHECK (coverage_percent BETWEEN 0 AND 100),
    sha              TEXT,
    summary          TEXT,
    create_time      INTEGER NOT NULL
);
CREATE INDEX test_reports_by_task ON test_reports (task_id, id);

CREATE VIEW test_reports_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'task_id', task_id,
    'passed', CASE WHEN passed THEN json('true') ELSE json('false') END,
    'coverage_percent', coverage_percent,
    'sha', sha,
    'summary', summary,
    'create_time', create_time
) FROM test_reports;

CREATE TRIGGER test_reports_created AFTER INSERT ON test_reports
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, task_id, payload, create_time)
    SELECT 'test_report.recorded', 'test_report', NEW.id, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM test_reports_payload WHERE id = NEW.id;
END;

CREATE TABLE deploy_statuses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    health      TEXT    NOT NULL CHECK (health IN ('healthy', 'degraded')),
    detail      TEXT,
    create_time INTEGER NOT NULL
);
CREATE INDEX deploy_statuses_by_task ON deploy_statuses (task_id, id);

CREATE VIEW deploy_statuses_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'task_id', task_id,
    'health', health,
    'detail', detail,
    'create_time', create_time
) FROM deploy_statuses;

CREATE TRIGGER deploy_statuses_created AFTER INSERT ON deploy_statuses
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, task_id, payload, create_time)
    SELECT 'deploy_status.recorded', 'deploy_status', NEW.id, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM deploy_statuses_payload WHERE id = NEW.id;
END;

-- A repository whose deploys are frozen by a degraded deploy; the row is
-- deleted when a healthy deploy lifts the freeze.
CREATE TABLE deploy_freezes (
    repo        TEXT    PRIMARY KEY,
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    detail      TEXT,
    create_time INTEGER NOT NULL
);

CREATE VIEW deploy_freezes_payload (repo, payload) AS
SELECT repo, json_object(
    'repo', repo,
    'task_id', task_id,
    'detail', detail,
    'create_time', create_time
) FROM deploy_freezes;

CREATE TRIGGER deploy_freezes_created AFTER INSERT ON deploy_freezes
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, task_id, payload, create_time)
    SELECT 'deploy_freeze.started', 'deploy_freeze', NEW.repo, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM deploy_freezes_payload WHERE repo = NEW.repo;
END;

CREATE TRIGGER deploy_freezes_lifted AFTER DELETE ON deploy_freezes
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, task_id, payload, create_time)
    VALUES ('deploy_freeze.lifted', 'deploy_freeze', OLD.repo, OLD.task_id,
            json_object('repo', OLD.repo, 'task_id', OLD.task_id, 'detail', OLD.detail,
                        'create_time', OLD.create_time),
            CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
