-- The API responses each transcript records (one row per message id,
-- request id and chain, the kept line), so that a response repeated across
-- transcripts (`claude --resume`) counts once. `counted` marks the copy that
-- counts (src/processors/dedup.rs decides); transcript_usage.by_model sums
-- the counted rows of its transcript, and feeds change_log as before. These
-- rows are the usage processor's working state: they emit no events.
CREATE TABLE usage_responses (
    transcript                  TEXT    NOT NULL,
    line                        INTEGER NOT NULL,
    message_id                  TEXT,
    request_id                  TEXT,
    sidechain                   INTEGER NOT NULL CHECK (sidechain IN (0, 1)),
    model                       TEXT    NOT NULL,
    input_tokens                INTEGER NOT NULL,
    output_tokens               INTEGER NOT NULL,
    cache_creation_input_tokens INTEGER NOT NULL,
    cache_read_input_tokens     INTEGER NOT NULL,
    counted                     INTEGER NOT NULL CHECK (counted IN (0, 1)),
    PRIMARY KEY (transcript, line)
) WITHOUT ROWID;

CREATE INDEX usage_responses_by_message ON usage_responses (message_id)
    WHERE message_id IS NOT NULL;

-- Usage counted before this table existed was deduplicated per transcript
-- only: the usage processor reads every transcript again.
DELETE FROM processor_state WHERE processor = 'usage';

-- AUTO lesson dedup also tells subjects apart (a tool_error_burst lesson of
-- one session or transcript never hides another's): see NewLesson::dedup_subject.
ALTER TABLE lessons ADD COLUMN dedup_subject TEXT;
DROP INDEX lessons_auto_dedup;
CREATE INDEX lessons_auto_dedup ON lessons (lesson_type, work_item_id, stage, dedup_subject, create_time)
    WHERE source = 'auto';
