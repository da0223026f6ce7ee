//! Golden comparison: the same changes, made on SQLite and on PostgreSQL
//! through sqlx, give the same change-log rows (event type, entity, the
//! ids the filters use) with payloads that are the same JSON value, for
//! every entity kind and verb of migrations 0001..0009 (0009: a pull
//! request's title); what 0007 and 0008 add appends no event on either.

use serde_json::Value;
use sqlx::{Connection, SqliteConnection};

use super::{migrated_database, pool};

/// Statements valid on both engines: '1'/'0' are flags on both, JSON
/// columns take JSON text, REAL columns take numbers.
const CHANGES: &[&str] = &[
    "INSERT INTO projects (id, repo_path, origin_url, display_name, register_time, coverage_threshold, \
     plane, required_ci_contexts) VALUES ('web', '/src/web', 'https://git.example/web.git', 'Web', 100, 80, \
     '{\"workspace\":\"acme\",\"project_id\":\"p-1\",\"states\":{\"done\":\"s-9\"}}', '[\"ci/build\",\"ci/test\"]')",
    "UPDATE projects SET display_name = 'Web app', update_time = 101, coverage_threshold = 87.5 WHERE id = 'web'",
    "INSERT INTO projects (id, repo_path, display_name, register_time) VALUES ('old', '/src/old', 'Old', 102)",
    "UPDATE projects SET archive_time = 103 WHERE id = 'old'",
    "INSERT INTO sessions (id, project_id, number, harness, state, role, issue_id, create_time, is_alive, \
     agent_session_id, prompt) VALUES ('web-1', 'web', 1, 'claude-code', 'working', 'developer', 'WEB-7', \
     110, '1', 'agent-abc', 'Fix the \"login\" bug\nplease')",
    "UPDATE sessions SET state = 'terminated', termination_reason = 'manually_killed', is_alive = '0', \
     end_time = 111, detecting_attempts = 2 WHERE id = 'web-1'",
    "INSERT INTO sessions (id, project_id, number, harness, state, create_time) \
     VALUES ('web-2', 'web', 2, 'codex', 'working', 112)",
    "INSERT INTO pull_requests (session_id, project_id, url, number, state, draft, comments, create_time) \
     VALUES ('web-2', 'web', 'https://git.example/web/pull/5', 5, 'open', '1', \
     '[{\"author\":\"rev\",\"body\":\"nit\",\"line\":3}]', 113)",
    "UPDATE pull_requests SET review_decision = 'approved', ci_state = 'passing', draft = '0', \
     update_time = 114 WHERE session_id = 'web-2'",
    "UPDATE pull_requests SET title = 'Fix the \"login\" bug ✓', update_time = 115 WHERE session_id = 'web-2'",
    "INSERT INTO checks (session_id, project_id, pull_request_number, name, commit_sha, status, create_time) \
     VALUES ('web-2', 'web', 5, 'ci/test', 'abc123', 'pending', 115)",
    "UPDATE checks SET status = 'failed', log_tail = 'assertion failed', update_time = 116",
    "INSERT INTO reactions (session_id, project_id, key, priority, target, status, message, create_time) \
     VALUES ('web-2', 'web', 'ci_failed', 'action', 'agent', 'pending', 'CI failed', 117)",
    "UPDATE reactions SET nudge_count = 1, nudge_time = 118, status = 'escalated' WHERE id = 1",
    "INSERT INTO tasks (project_id, tracker_issue_id, work_item_id, title, repo, branch, stage, \
     stage_session_id, create_time, update_time, stage_enter_time) VALUES ('web', 'ISSUE-1', 'WEB-7', \
     'Login', 'acme/web', 'fix-login', 'development', 'web-2', 120, 120, 120)",
    "UPDATE tasks SET stage = 'review', stage_enter_time = 121, update_time = 121 WHERE id = 1",
    "UPDATE tasks SET hold_reason = 'rollback_limit', hold_time = 122, hold_detail = 'three rollbacks', \
     last_gate = '{\"gate\":\"review\",\"passed\":false}' WHERE id = 1",
    "UPDATE tasks SET hold_reason = NULL, hold_time = NULL, stage_session_finished = '1' WHERE id = 1",
    "UPDATE tasks SET head_sha = 'abc123', rollback_count = 1 WHERE id = 1",
    "INSERT INTO ci_statuses (repo, sha, branch, context, state, create_time, update_time) \
     VALUES ('acme/web', 'abc123', 'fix-login', 'ci/build', 'pending', 130, 130)",
    "UPDATE ci_statuses SET state = 'success', target_url = 'https://ci.example/1', update_time = 131",
    "INSERT INTO verdicts (task_id, decision, source, author, comment, stage, create_time) \
     VALUES (1, 'approved', 'pr_review', 'rev', 'LGTM', 'review', 132)",
    "INSERT INTO test_reports (task_id, passed, coverage_percent, sha, summary, create_time) \
     VALUES (1, '1', 91.25, 'abc123', '120 passed', 133)",
    "INSERT INTO test_reports (task_id, passed, coverage_percent, create_time) VALUES (1, '0', 40, 134)",
    "INSERT INTO deploy_statuses (task_id, health, detail, create_time) VALUES (1, 'degraded', '5xx', 135)",
    "INSERT INTO deploy_freezes (repo, task_id, detail, create_time) VALUES ('acme/web', 1, '5xx', 136)",
    "DELETE FROM deploy_freezes WHERE repo = 'acme/web'",
    "INSERT INTO lessons (create_time, lesson_type, work_item_id, task_id, session_id, stage, agent, repo, \
     root_cause, detail, source) VALUES (140, 'ci_failure', 'WEB-7', 1, 'web-2', 'development', \
     'claude-code', 'acme/web', 'flaky test', 'ünïcode ✓ and \"quotes\"', 'auto')",
    "UPDATE lessons SET status = 'linked', related_task = 'WEB-9', attribution = 'project', \
     target_domain = 'quality', update_time = 141 WHERE id = 1",
    // 0008: the dedup subject is not part of the payload.
    "UPDATE lessons SET dedup_subject = 'web-2' WHERE id = 1",
    // 0007 and 0008: working state that appends no event.
    "INSERT INTO pull_request_observations (session_id, observed_time) VALUES ('web-2', 142)",
    "INSERT INTO usage_responses (transcript, line, message_id, request_id, sidechain, model, input_tokens, \
     output_tokens, cache_creation_input_tokens, cache_read_input_tokens, counted) \
     VALUES ('alice/s1.jsonl', 3, 'msg_1', 'req_1', '0', 'claude-x', 10, 5, 0, 2, '1')",
    "INSERT INTO reconciler_runs (trigger, state, start_time) VALUES ('scheduled', 'running', 150)",
    "UPDATE reconciler_runs SET state = 'succeeded', end_time = 151, gate_side_ran = '1', gate_scanned = 4, \
     gate_advanced = 1, tracker_replayed = 2, actions = '[{\"task\":1,\"action\":\"advance\"}]' WHERE id = 1",
    "INSERT INTO reconciler_runs (trigger, state, start_time) VALUES ('manual', 'running', 152)",
    "UPDATE reconciler_runs SET state = 'failed', error = 'tracker down', end_time = 153 WHERE id = 2",
    "INSERT INTO processor_runs (processor, run_trigger, state, start_time) VALUES ('usage', 'manual', 'running', 160)",
    "UPDATE processor_runs SET scanned = 3, processed = 2 WHERE id = 1",
    "UPDATE processor_runs SET state = 'succeeded', end_time = 161, capped = '1', \
     error_details = '[{\"transcript\":\"a/b.jsonl\",\"error\":\"bad\"}]' WHERE id = 1",
    "INSERT INTO processor_state (processor, transcript, owner, processed_time, items, content_hash) \
     VALUES ('usage', 'alice/s1.jsonl', 'alice', 162, 10, 'h1')",
    "UPDATE processor_state SET consecutive_failures = 5, quarantine_time = 163, last_error = 'bad line'",
    "UPDATE processor_state SET items = 11",
    "INSERT INTO processor_state (processor, transcript, owner, quarantine_time) \
     VALUES ('tool_errors', 'bob/s2.jsonl', 'bob', 164)",
    "DELETE FROM processor_state WHERE processor = 'usage'",
    "INSERT INTO transcript_usage (transcript, owner, session_id, by_model, processed_time) VALUES \
     ('alice/s1.jsonl', 'alice', 'agent-abc', '{\"claude-x\":{\"input_tokens\":10,\"output_tokens\":5}}', 170)",
    "UPDATE transcript_usage SET processed_time = 171",
    "INSERT INTO transcript_usage (transcript, owner, session_id, by_model, processed_time) \
     VALUES ('nobody/s.jsonl', 'nobody', 'agent-unknown', '{}', 172)",
    "INSERT INTO transcript_tool_errors (transcript, owner, session_id, by_tool, errors, bursts, processed_time) \
     VALUES ('alice/s1.jsonl', 'alice', 'agent-abc', '{\"Bash\":3}', 3, 0, 173)",
    "UPDATE transcript_tool_errors SET errors = 6, bursts = 1, by_tool = '{\"Bash\":6}'",
    "DELETE FROM transcript_usage WHERE transcript = 'alice/s1.jsonl'",
    "DELETE FROM transcript_usage WHERE transcript = 'nobody/s.jsonl'",
    "DELETE FROM transcript_tool_errors",
];

/// (event_type, entity_kind, entity_id, project_id, session_id, task_id, payload)
pub(super) type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Value,
);

pub(super) type RawRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
);

pub(super) fn parse(rows: Vec<RawRow>) -> Vec<Row> {
    rows.into_iter()
        .map(|(a, b, c, d, e, f, payload)| {
            (
                a,
                b,
                c,
                d,
                e,
                f,
                serde_json::from_str(&payload).expect("payload is JSON"),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_event_payload_equals_sqlites_for_the_same_change() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let pg = pool(&url, 1).await;
    let mut lite = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    bosun::storage::MIGRATOR.run(&mut lite).await.unwrap();
    for change in CHANGES {
        sqlx::query(change)
            .execute(&mut lite)
            .await
            .unwrap_or_else(|err| panic!("SQLite: {change}: {err}"));
        sqlx::query(change)
            .execute(&pg)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL: {change}: {err}"));
    }
    const COLUMNS: &str = "event_type, entity_kind, entity_id, project_id, session_id, task_id";
    let lite_rows: Vec<RawRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, payload FROM change_log ORDER BY seq"
    ))
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let pg_rows: Vec<RawRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, payload::text FROM change_log ORDER BY seq"
    ))
    .fetch_all(&pg)
    .await
    .unwrap();
    let (lite_rows, pg_rows) = (parse(lite_rows), parse(pg_rows));
    assert_eq!(pg_rows.len(), lite_rows.len(), "the same events on both");
    for (index, (pg_row, lite_row)) in pg_rows.iter().zip(&lite_rows).enumerate() {
        assert_eq!(pg_row, lite_row, "event {} ({})", index + 1, lite_row.0);
    }
    let kinds: std::collections::BTreeSet<&str> = lite_rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(kinds.len(), 17, "every entity kind is compared: {kinds:?}");
}
