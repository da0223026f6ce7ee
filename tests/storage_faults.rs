//! Storage faults: a database locked by another process, a second bosun on
//! one data dir, a read-only data dir, a full disk. Each gives UNAVAILABLE
//! (with a reason naming the fault) or one clear start-up line, and leaves
//! the file intact (`PRAGMA integrity_check`). Also: the data dir and every
//! file bosun creates in it are owner-only.
//!
//! The read-only and full-disk cases mount a small tmpfs and so need root
//! (CI runs as root); elsewhere they say so and check what they can.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bosun::pb::{GetLessonRequest, Lesson, ListLessonsRequest, RecordLessonRequest};
use common::process::{BosunProcess, bosun_command, connect};
use common::{TestServer, assert_error};
use sqlx::{Connection, SqliteConnection};
use tonic::Code;

async fn record(server: &TestServer, root_cause: &str) -> Result<i64, tonic::Status> {
    let response = server
        .lessons()
        .record_lesson(RecordLessonRequest {
            request_id: String::new(),
            lesson: Some(Lesson {
                lesson_type: "gate_failure".into(),
                root_cause: root_cause.into(),
                ..Lesson::default()
            }),
        })
        .await?;
    Ok(response.into_inner().lesson.unwrap().id)
}

async fn integrity(path: &Path) -> String {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let result = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    result
}

fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// A tmpfs of `size` mounted on a fresh dir; unmounted when dropped.
struct Tmpfs {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs (as root)");
        Self {
            _parent: parent,
            path,
        }
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test]
async fn a_database_locked_by_another_process_answers_unavailable_until_released() {
    let server =
        TestServer::start_with(|config| config.storage.busy_timeout = Duration::from_millis(200))
            .await;
    let first = record(&server, "before").await.unwrap();
    // An operator's sqlite3 (or a backup tool) takes the write lock.
    let mut other = server.sqlite().await;
    let held = other.begin_with("BEGIN EXCLUSIVE").await.unwrap();
    let status = record(&server, "while locked").await.unwrap_err();
    assert_error(&status, Code::Unavailable, "STORAGE_UNAVAILABLE");
    // Reads go on meanwhile.
    let lesson = server
        .lessons()
        .get_lesson(GetLessonRequest { id: first })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lesson.root_cause, "before");
    held.rollback().await.unwrap();
    other.close().await.unwrap();
    let after = record(&server, "after").await.unwrap();
    assert!(after > first);
    let listed = server
        .lessons()
        .list_lessons(ListLessonsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lessons;
    let causes: Vec<&str> = listed.iter().map(|l| l.root_cause.as_str()).collect();
    assert_eq!(
        causes,
        ["after", "before"],
        "the refused write left nothing"
    );
    assert_eq!(integrity(&server.db_path()).await, "ok");
}

#[tokio::test]
async fn a_second_bosun_on_the_same_data_dir_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut first = BosunProcess::spawn(&data_dir, &[]);
    let addr = first.ready().await.expect("the first bosun serves");
    let second = BosunProcess::spawn(&data_dir, &[]);
    let (status, log) = second.exited().await;
    assert!(!status.success(), "the second bosun must not serve");
    let last = log.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("bosun: another bosun process (pid ") && last.contains("stop it first"),
        "one clear line: {log:?}"
    );
    let migrate = bosun_command()
        .args(["migrate", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!migrate.status.success());
    assert!(String::from_utf8_lossy(&migrate.stderr).contains("another bosun process"));
    // The first one still serves, and once it is gone the data dir is free.
    connect(addr).await;
    first.kill();
    let mut third = BosunProcess::spawn(&data_dir, &[]);
    assert!(third.ready().await.is_some(), "{}", third.log_tail(10));
    third.kill();
    assert_eq!(
        integrity(&data_dir.join(bosun::storage::DB_FILE)).await,
        "ok"
    );
}

#[tokio::test]
async fn a_read_only_data_dir_is_one_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, _mount) = if is_root() {
        // Root ignores permission bits: make the file system read-only.
        let mount = Tmpfs::mount("8m");
        (mount.path.join("data"), Some(mount))
    } else {
        (dir.path().join("data"), None)
    };
    let mut bosun = BosunProcess::spawn(&data_dir, &[]);
    assert!(bosun.ready().await.is_some(), "{}", bosun.log_tail(10));
    bosun.kill();
    match &_mount {
        Some(mount) => mount.remount("ro"),
        None => {
            std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o500)).unwrap()
        }
    }
    let (status, log) = BosunProcess::spawn(&data_dir, &[]).exited().await;
    assert!(!status.success());
    let last = log.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "bosun: cannot write to data dir {}",
            data_dir.display()
        )),
        "one clear line: {log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("bosun serving")));
    if let Some(mount) = &_mount {
        mount.remount("rw");
    } else {
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(
        integrity(&data_dir.join(bosun::storage::DB_FILE)).await,
        "ok"
    );
}

#[tokio::test]
async fn a_full_disk_answers_storage_full_keeps_reads_and_recovers_when_freed() {
    if !is_root() {
        eprintln!("needs root to mount a small tmpfs; the mapping of SQLITE_FULL is unit-tested");
        return;
    }
    let mount = Tmpfs::mount("3m");
    // Ballast, so space can be freed later without touching bosun's files.
    let ballast = mount.path.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1024 * 1024]).unwrap();
    let data_dir = mount.path.join("data");
    let server = TestServer::start_with(|config| config.data_dir = data_dir.clone()).await;
    let cause = "x".repeat(16 * 1024);
    let mut acked = Vec::new();
    let status = loop {
        match record(&server, &cause).await {
            Ok(id) => acked.push(id),
            Err(status) => break status,
        }
        assert!(acked.len() < 1000, "the disk never filled");
    };
    assert_error(&status, Code::Unavailable, "STORAGE_FULL");
    assert!(!acked.is_empty());
    // Reads go on, and every acknowledged write is there.
    for id in &acked {
        let lesson = server
            .lessons()
            .get_lesson(GetLessonRequest { id: *id })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(lesson.root_cause.len(), cause.len());
    }
    std::fs::remove_file(&ballast).unwrap();
    let after = record(&server, "after freeing space").await.unwrap();
    assert!(after > *acked.last().unwrap());
    assert_eq!(integrity(&server.db_path()).await, "ok");
}

#[tokio::test]
async fn the_data_dir_and_every_file_in_it_are_owner_only() {
    let server = TestServer::start().await;
    record(&server, "make the WAL").await.unwrap();
    let data_dir = &server.config.data_dir;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data_dir), 0o700);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    names.sort();
    for expected in [
        "bosun.db",
        "bosun.db-shm",
        "bosun.db-wal",
        "bosun.lock",
        "webhooks.db",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}
