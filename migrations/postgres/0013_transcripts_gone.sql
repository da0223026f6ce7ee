-- A transcript deleted from the transcripts folder is forgotten by the next
-- pass: its state and what each processor stored for it go, so usage totals
-- stay those of the folder (as ccusage counts them). Deleting a product row
-- is an event, like every other change; the payload is the row as it was,
-- with the same keys as the payload views (SQLite's 0012 twin).

CREATE FUNCTION transcript_usage_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload)
    SELECT 'transcript_usage.deleted', 'transcript_usage', OLD.transcript, s.project_id, s.id,
           jsonb_build_object(
               'transcript', OLD.transcript,
               'owner', OLD.owner,
               'session_id', OLD.session_id,
               'by_model', OLD.by_model,
               'processed_time', OLD.processed_time
           )
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT id, project_id FROM sessions WHERE agent_session_id = OLD.session_id
                       ORDER BY row_order DESC LIMIT 1) s ON true;
    RETURN NULL;
END
$$;

CREATE TRIGGER transcript_usage_deleted AFTER DELETE ON transcript_usage
    FOR EACH ROW EXECUTE FUNCTION transcript_usage_deleted();

CREATE FUNCTION transcript_tool_errors_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (event_type, entity_kind, entity_id, project_id, session_id, payload)
    SELECT 'transcript_tool_errors.deleted', 'transcript_tool_errors', OLD.transcript, s.project_id, s.id,
           jsonb_build_object(
               'transcript', OLD.transcript,
               'owner', OLD.owner,
               'session_id', OLD.session_id,
               'by_tool', OLD.by_tool,
               'errors', OLD.errors,
               'bursts', OLD.bursts,
               'processed_time', OLD.processed_time
           )
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT id, project_id FROM sessions WHERE agent_session_id = OLD.session_id
                       ORDER BY row_order DESC LIMIT 1) s ON true;
    RETURN NULL;
END
$$;

CREATE TRIGGER transcript_tool_errors_deleted AFTER DELETE ON transcript_tool_errors
    FOR EACH ROW EXECUTE FUNCTION transcript_tool_errors_deleted();
