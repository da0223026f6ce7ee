//! Migrations that change stored rows do the same on both engines: data
//! written under migrations 0001..0006, then migrated to the newest schema,
//! ends as the same rows with the same events in the same order. 0007 lowers
//! repository spellings (skipping a row whose lowercase spelling is taken,
//! as SQLite's UPDATE OR IGNORE does, row by row in rowid order) and 0008
//! forgets the usage processor's transcript state.

use std::borrow::Cow;

use sqlx::migrate::Migrator;
use sqlx::{Connection, SqliteConnection};

use super::payloads::{RawRow, Row, parse};
use super::{pg, pool};

/// The migrations before the first one that rewrites data.
const BEFORE: i64 = 7;

/// Statements valid on both engines, run under migrations 0001..0006.
const OLD_ROWS: &[&str] = &[
    "INSERT INTO projects (id, repo_path, display_name, register_time) VALUES ('web', '/src/web', 'Web', 1)",
    // Task 1 keeps its spelling: open task 3 already holds acme/web's branch a.
    // Task 4 is done, so its branch takes no place. Task 6 keeps its spelling:
    // task 5, lowered first (rowid order), took beta/x's branch d.
    "INSERT INTO tasks (project_id, tracker_issue_id, work_item_id, repo, branch, stage, create_time, \
     update_time, stage_enter_time) VALUES \
     ('web', 'I-1', 'W-1', 'Acme/Web', 'a', 'development', 10, 10, 10), \
     ('web', 'I-2', 'W-2', 'Zeta/App', 'b', 'development', 11, 11, 11), \
     ('web', 'I-3', 'W-3', 'acme/web', 'a', 'development', 12, 12, 12), \
     ('web', 'I-4', 'W-4', 'ACME/Web', 'a', 'done', 13, 13, 13), \
     ('web', 'I-5', 'W-5', 'Beta/X', 'd', 'review', 14, 14, 14), \
     ('web', 'I-6', 'W-6', 'BETA/x', 'd', 'development', 15, 15, 15)",
    // 1 keeps its spelling (2 is taken), 3 is lowered, then 4 keeps its own.
    "INSERT INTO ci_statuses (repo, sha, context, state, create_time, update_time) VALUES \
     ('Acme/Web', 's1', 'ci/build', 'pending', 20, 20), \
     ('acme/web', 's1', 'ci/build', 'success', 21, 21), \
     ('Acme/Web', 's2', 'ci/test', 'failure', 22, 22), \
     ('ACME/WEB', 's2', 'ci/test', 'error', 23, 23)",
    "INSERT INTO deploy_freezes (repo, task_id, detail, create_time) VALUES \
     ('Acme/Web', 1, 'first', 30), ('ACME/web', 2, 'second', 31), ('Other/Repo', 3, NULL, 32)",
    // Inserted out of key order: SQLite forgets them in key order.
    "INSERT INTO processor_state (processor, transcript, owner, items) VALUES \
     ('usage', 'b.jsonl', 'o', 1), ('usage', 'A.jsonl', 'o', 2), ('usage', 'a.jsonl', 'o', 3), \
     ('tool_errors', 'x.jsonl', 'o', 4)",
];

/// The rows the data migrations touch, as text on both engines.
const STATE: &[&str] = &[
    "SELECT id || ' ' || repo FROM tasks ORDER BY id",
    "SELECT id || ' ' || repo FROM ci_statuses ORDER BY id",
    "SELECT repo || ' ' || task_id FROM deploy_freezes ORDER BY task_id",
    "SELECT processor || '/' || transcript FROM processor_state ORDER BY processor, transcript",
];

const EVENTS: &str = "event_type, entity_kind, entity_id, project_id, session_id, task_id, payload";

/// `migrator` with only its migrations numbered below `BEFORE`.
fn old(migrator: &Migrator) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            migrator
                .migrations
                .iter()
                .filter(|m| m.version < BEFORE)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

#[tokio::test]
async fn rows_written_before_0007_migrate_to_the_same_rows_and_events() {
    let Some(server) = pg::server() else {
        return;
    };
    let pg = pool(&server.database().await, 1).await;
    let mut lite = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    let (lite_migrator, pg_migrator) = (
        &bosun::storage::MIGRATOR,
        &bosun::storage::postgres::MIGRATOR,
    );
    old(lite_migrator).run(&mut lite).await.unwrap();
    old(pg_migrator).run(&pg).await.unwrap();
    for statement in OLD_ROWS {
        sqlx::query(statement).execute(&mut lite).await.unwrap();
        sqlx::query(statement).execute(&pg).await.unwrap();
    }
    let head = "SELECT COALESCE(MAX(seq), 0) FROM change_log";
    let lite_head: i64 = sqlx::query_scalar(head).fetch_one(&mut lite).await.unwrap();
    let pg_head: i64 = sqlx::query_scalar(head).fetch_one(&pg).await.unwrap();
    assert_eq!(pg_head, lite_head, "the old rows' events");

    lite_migrator.run(&mut lite).await.unwrap();
    pg_migrator.run(&pg).await.unwrap();

    for query in STATE {
        let lite_state: Vec<String> = sqlx::query_scalar(query)
            .fetch_all(&mut lite)
            .await
            .unwrap();
        let pg_state: Vec<String> = sqlx::query_scalar(query).fetch_all(&pg).await.unwrap();
        assert_eq!(pg_state, lite_state, "{query}");
    }
    let lite_tasks: Vec<String> = sqlx::query_scalar(STATE[0])
        .fetch_all(&mut lite)
        .await
        .unwrap();
    assert_eq!(
        lite_tasks,
        [
            "1 Acme/Web",
            "2 zeta/app",
            "3 acme/web",
            "4 acme/web",
            "5 beta/x",
            "6 BETA/x"
        ],
        "SQLite lowers row by row in rowid order and skips a taken spelling"
    );

    let lite_events: Vec<RawRow> = sqlx::query_as(&format!(
        "SELECT {EVENTS} FROM change_log WHERE seq > ? ORDER BY seq"
    ))
    .bind(lite_head)
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let pg_events: Vec<RawRow> = sqlx::query_as(&format!(
        "SELECT {EVENTS}::text FROM change_log WHERE seq > $1 ORDER BY seq"
    ))
    .bind(pg_head)
    .fetch_all(&pg)
    .await
    .unwrap();
    let (lite_events, pg_events): (Vec<Row>, Vec<Row>) = (parse(lite_events), parse(pg_events));
    let entities: Vec<(&str, &str)> = lite_events
        .iter()
        .map(|e| (e.0.as_str(), e.2.as_str()))
        .collect();
    assert_eq!(
        entities,
        [
            ("task.updated", "2"),
            ("task.updated", "4"),
            ("task.updated", "5"),
            ("ci_status.updated", "acme/web@s2/ci/test"),
            ("processor_state.forgotten", "usage/A.jsonl"),
            ("processor_state.forgotten", "usage/a.jsonl"),
            ("processor_state.forgotten", "usage/b.jsonl"),
        ],
        "SQLite's events of the data migrations"
    );
    assert_eq!(pg_events, lite_events);
}
