-- The lessons journal (SPEC §5). Attribution columns are nullable from the
-- start and filled in later. Slugs are TEXT with CHECKs: the open lesson_type
-- is validated by the server.

CREATE TABLE lessons (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    create_time   INTEGER NOT NULL, -- unix microseconds
    update_time   INTEGER,          -- unset until the first update
    lesson_type   TEXT    NOT NULL CHECK (length(lesson_type) BETWEEN 1 AND 64),
    work_item_id  TEXT,
    task_id       INTEGER,
    session_id    TEXT,
    stage         TEXT,
    agent         TEXT,
    repo          TEXT,
    root_cause    TEXT,
    suggestion    TEXT,
    detail        TEXT,
    status        TEXT    NOT NULL DEFAULT 'new'
                  CHECK (status IN ('new', 'in_progress', 'closed', 'linked')),
    related_task  TEXT,
    source        TEXT    NOT NULL CHECK (source IN ('auto', 'manual')),
    attribution   TEXT    CHECK (attribution IN ('platform', 'project', 'both', 'unknown')),
    target_repo   TEXT,
    target_domain TEXT    CHECK (target_domain IN ('reliability', 'quality', 'economy', 'features', 'scale'))
);

CREATE INDEX lessons_by_type ON lessons (lesson_type, id);
CREATE INDEX lessons_by_status ON lessons (status, id);
CREATE INDEX lessons_by_repo ON lessons (repo, id);
CREATE INDEX lessons_by_work_item ON lessons (work_item_id, id);
-- The auto-dedup lookup: same (work_item_id, lesson_type, stage) recently.
CREATE INDEX lessons_auto_dedup ON lessons (lesson_type, work_item_id, stage, create_time)
    WHERE source = 'auto';

CREATE VIEW lessons_payload (id, payload) AS
SELECT id, json_object(
    'id', id,
    'create_time', create_time,
    'update_time', update_time,
    'lesson_type', lesson_type,
    'work_item_id', work_item_id,
    'task_id', task_id,
    'session_id', session_id,
    'stage', stage,
    'agent', agent,
    'repo', repo,
    'root_cause', root_cause,
    'suggestion', suggestion,
    'detail', detail,
    'status', status,
    'related_task', related_task,
    'source', source,
    'attribution', attribution,
    'target_repo', target_repo,
    'target_domain', target_domain
) FROM lessons;

CREATE TRIGGER lessons_created AFTER INSERT ON lessons
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, session_id, task_id, payload, create_time)
    SELECT 'lesson.created', 'lesson', NEW.id, NEW.session_id, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM lessons_payload WHERE id = NEW.id;
END;

CREATE TRIGGER lessons_updated AFTER UPDATE ON lessons
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, session_id, task_id, payload, create_time)
    SELECT 'lesson.updated', 'lesson', NEW.id, NEW.session_id, NEW.task_id, payload,
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM lessons_payload WHERE id = NEW.id;
END;
