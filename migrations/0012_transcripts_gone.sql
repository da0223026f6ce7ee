-- A transcript deleted from the transcripts folder is forgotten by the next
-- pass: its state and what each processor stored for it go, so usage totals
-- stay those of the folder (as ccusage counts them). Deleting a product row
-- is an event, like every other change; the payload is the row as it was
-- (the payload views cannot see a deleted row, so the keys are spelled out).

CREATE TRIGGER transcript_usage_deleted AFTER DELETE ON transcript_usage
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'transcript_usage.deleted', 'transcript_usage', OLD.transcript, s.project_id, s.id,
           json_object(
               'transcript', OLD.transcript,
               'owner', OLD.owner,
               'session_id', OLD.session_id,
               'by_model', json(OLD.by_model),
               'processed_time', OLD.processed_time
           ),
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM (SELECT 1) LEFT JOIN (SELECT id, project_id FROM sessions WHERE agent_session_id = OLD.session_id
                               ORDER BY rowid DESC LIMIT 1) s;
END;

CREATE TRIGGER transcript_tool_errors_deleted AFTER DELETE ON transcript_tool_errors
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload, create_time)
    SELECT 'transcript_tool_errors.deleted', 'transcript_tool_errors', OLD.transcript, s.project_id, s.id,
           json_object(
               'transcript', OLD.transcript,
               'owner', OLD.owner,
               'session_id', OLD.session_id,
               'by_tool', json(OLD.by_tool),
               'errors', OLD.errors,
               'bursts', OLD.bursts,
               'processed_time', OLD.processed_time
           ),
           CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM (SELECT 1) LEFT JOIN (SELECT id, project_id FROM sessions WHERE agent_session_id = OLD.session_id
                               ORDER BY rowid DESC LIMIT 1) s;
END;
