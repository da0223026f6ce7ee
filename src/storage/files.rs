//! The data dir's files: the dir itself (owner-only), the lock that keeps a
//! second bosun off it, and database files created owner-only from their
//! first byte (SQLite gives a database's `-wal` and `-shm` files the mode of
//! the database file, so creating that file 0600 before SQLite opens it
//! covers all three).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// The lock file inside the data dir.
pub const LOCK_FILE: &str = "bosun.lock";

/// An exclusive advisory lock (flock) on `<data_dir>/bosun.lock`, held while
/// a bosun process uses the data dir; released when dropped or when the
/// process dies, however it dies. The file holds the holder's pid, for the
/// operator.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock, or fails at once with a clear error if another
    /// process holds it.
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write to data dir {}", data_dir.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                anyhow::bail!(
                    "another bosun process{holder} is using data dir {}; stop it first \
                     (two processes on one database would corrupt the change log order)",
                    data_dir.display()
                );
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write to data dir {}", data_dir.display()))?;
        Ok(Self { _file: file })
    }
}

/// Creates the data dir, owner-only, unless it exists.
pub fn create_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    if !data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    }
    Ok(())
}

/// Makes `path` (a SQLite database) and its `-wal`/`-shm` files owner-only:
/// creates the database file 0600 if missing (an empty file is an empty
/// database), and narrows files left wider by an older bosun.
pub fn owner_only_database(path: &Path) -> anyhow::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create database {}", path.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        let Ok(metadata) = file.metadata() else {
            continue;
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot set permissions on {}", file.display()))?;
        }
    }
    Ok(())
}
