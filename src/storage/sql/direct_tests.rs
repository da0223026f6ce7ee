//! The direct connection: statements, binding, decoding and how its errors
//! are classified.

use super::*;
use crate::error::ServiceError;

fn open() -> anyhow::Result<(tempfile::TempDir, Direct)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.db");
    rusqlite::Connection::open(&path)?;
    let options = DirectOptions {
        path,
        busy_timeout: Duration::from_secs(1),
        cache_kib: 1024,
        read_only: false,
    };
    let mut direct = Direct::open(&options)?;
    direct.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, flag INTEGER, doc TEXT)",
        Vec::new(),
    )?;
    Ok((dir, direct))
}

#[test]
fn placeholders_take_their_numbered_value_wherever_they_appear() -> anyhow::Result<()> {
    let (_dir, mut direct) = open()?;
    let insert = "INSERT INTO t (doc, name, flag) VALUES ($3, $1, $2) RETURNING id";
    let values = vec![
        Value::from("a"),
        Value::from(true),
        Value::from(super::super::Json("{\"k\":1}")),
    ];
    let ids: Vec<(i64,)> = direct.fetch(insert, values, None)?;
    assert_eq!(ids, [(1,)]);
    let rows: Vec<(String, bool, JsonText)> =
        direct.fetch("SELECT name, flag, doc FROM t", Vec::new(), None)?;
    assert_eq!(rows, [("a".into(), true, JsonText("{\"k\":1}".into()))]);
    let changed = direct.execute(
        "UPDATE t SET flag = $1 WHERE name = $2",
        vec![Value::from(false), Value::from("a")],
    )?;
    assert_eq!(changed, 1);
    Ok(())
}

struct Named {
    name: String,
    flag: bool,
}
crate::direct_row!(Named { name, flag });

#[test]
fn structs_decode_by_name_in_any_column_order() -> anyhow::Result<()> {
    let (_dir, mut direct) = open()?;
    direct.execute(
        "INSERT INTO t (name, flag) VALUES ($1, $2)",
        vec![Value::from("a"), Value::from(true)],
    )?;
    for sql in [
        "SELECT name, flag FROM t",
        "SELECT flag, name FROM t",
        "SELECT id, flag, doc, name FROM t",
    ] {
        let rows: Vec<Named> = direct.fetch(sql, Vec::new(), None)?;
        let decoded: Vec<(&str, bool)> = rows.iter().map(|r| (r.name.as_str(), r.flag)).collect();
        assert_eq!(decoded, [("a", true)], "{sql}");
    }
    let missing = direct.fetch::<Named>("SELECT name FROM t", Vec::new(), None);
    assert!(
        matches!(missing, Err(StoreError::Malformed(_))),
        "{:?}",
        missing.err()
    );
    Ok(())
}

#[test]
fn errors_are_classified_as_sqlx_s_are() -> anyhow::Result<()> {
    let (_dir, mut direct) = open()?;
    let insert = "INSERT INTO t (name) VALUES ($1)";
    direct.execute(insert, vec![Value::from("a")])?;
    let twice = direct.execute(insert, vec![Value::from("a")]);
    assert!(
        matches!(twice, Err(StoreError::UniqueViolation(_))),
        "{twice:?}"
    );
    let missing = direct.execute(insert, Vec::new());
    assert!(
        matches!(missing, Err(StoreError::Malformed(_))),
        "{missing:?}"
    );
    let bad = direct.execute("INSERT INTO nowhere VALUES (1)", Vec::new());
    assert_eq!(bad.err().map(|err| err.reason()), Some("INTERNAL"));
    let text_as_number = direct.fetch::<(i64,)>("SELECT name FROM t", Vec::new(), None);
    assert!(matches!(text_as_number, Err(StoreError::Malformed(_))));
    Ok(())
}

#[test]
fn a_writer_alone_keeps_its_wal_bounded() -> anyhow::Result<()> {
    // No checkpointer runs here, as none keeps up under a steady stream of
    // commits: the writer's own checkpoint past WRITER_WAL_PAGES must let
    // the WAL start over. 2,400 commits of 64 KiB are about 150 MiB of
    // frames, more than twice the bound.
    let (dir, mut direct) = open()?;
    let wal = dir.path().join("t.db-wal");
    let page_frame = 4096 + 24;
    let bound = u64::from(WRITER_WAL_PAGES + 64) * page_frame;
    let mut largest = 0;
    for n in 0..2400 {
        direct.execute("BEGIN IMMEDIATE", Vec::new())?;
        direct.execute(
            "INSERT INTO t (name, doc) VALUES ($1, hex(randomblob(32768)))",
            vec![Value::from(format!("row {n}"))],
        )?;
        direct.execute("COMMIT", Vec::new())?;
        largest = largest.max(std::fs::metadata(&wal)?.len());
    }
    assert!(
        largest <= bound,
        "the WAL grew to {largest} bytes, past {bound}"
    );
    let rows: Vec<(i64,)> = direct.fetch("SELECT count(*) FROM t", Vec::new(), None)?;
    assert_eq!(rows, [(2400,)]);
    Ok(())
}
