-- Usage counted once per API response, burst lessons per subject: the
-- PostgreSQL port of migrations/0008_usage_and_bursts.sql.

-- The API responses each transcript records (one row per message id,
-- request id and chain, the kept line), so that a response repeated across
-- transcripts (`claude --resume`) counts once. `counted` marks the copy that
-- counts (src/processors/dedup.rs decides); transcript_usage.by_model sums
-- the counted rows of its transcript, and feeds change_log as before. These
-- rows are the usage processor's working state: they emit no events.
CREATE TABLE usage_responses (
    transcript                  text    NOT NULL,
    line                        bigint  NOT NULL,
    message_id                  text,
    request_id                  text,
    sidechain                   boolean NOT NULL,
    model                       text    NOT NULL,
    input_tokens                bigint  NOT NULL,
    output_tokens               bigint  NOT NULL,
    cache_creation_input_tokens bigint  NOT NULL,
    cache_read_input_tokens     bigint  NOT NULL,
    counted                     boolean NOT NULL,
    PRIMARY KEY (transcript, line)
);

CREATE INDEX usage_responses_by_message ON usage_responses (message_id)
    WHERE message_id IS NOT NULL;

-- Usage counted before this table existed was deduplicated per transcript
-- only: the usage processor reads every transcript again. Each deleted row
-- appends processor_state.forgotten; SQLite deletes them in key order
-- (processor_state is WITHOUT ROWID, bytewise text), so this does too.
DO $$
DECLARE
    row_transcript text;
BEGIN
    FOR row_transcript IN SELECT transcript FROM processor_state WHERE processor = 'usage'
                          ORDER BY transcript COLLATE "C" LOOP
        DELETE FROM processor_state WHERE processor = 'usage' AND transcript = row_transcript;
    END LOOP;
END
$$;

-- AUTO lesson dedup also tells subjects apart (a tool_error_burst lesson of
-- one session or transcript never hides another's): see NewLesson::dedup_subject.
-- Not part of the lesson's payload (lessons_payload is unchanged).
ALTER TABLE lessons ADD COLUMN dedup_subject text;
DROP INDEX lessons_auto_dedup;
CREATE INDEX lessons_auto_dedup ON lessons (lesson_type, work_item_id, stage, dedup_subject, create_time)
    WHERE source = 'auto';
