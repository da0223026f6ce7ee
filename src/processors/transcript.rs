//! Transcripts on disk: `<transcripts-dir>/<owner>/<name>.jsonl`, keyed
//! `owner/name.jsonl`. Listing stats each file (no read); reading takes the
//! read time first, then reads and hashes the content. Messages never carry
//! server paths.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::time::UnixMicros;

/// Longest transcript key, in bytes (owners are encoded project paths).
pub const MAX_KEY_LEN: usize = 1024;
/// What a transcript's file name ends with.
pub const EXTENSION: &str = ".jsonl";

/// A transcript's key, "owner/name.jsonl": two path segments, neither empty,
/// `.` or `..`, without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TranscriptKey {
    key: String,
    owner_len: usize,
}

impl TranscriptKey {
    pub fn parse(key: &str) -> Option<Self> {
        let (owner, name) = key.split_once('/')?;
        Self::from_parts(owner, name)
    }

    pub fn from_parts(owner: &str, name: &str) -> Option<Self> {
        let segment = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.contains('/')
                && !s.chars().any(char::is_control)
        };
        let stem = name.strip_suffix(EXTENSION)?;
        let valid = segment(owner)
            && segment(name)
            && !stem.is_empty()
            && owner.len() + 1 + name.len() <= MAX_KEY_LEN;
        valid.then(|| Self {
            key: format!("{owner}/{name}"),
            owner_len: owner.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    pub fn owner(&self) -> &str {
        &self.key[..self.owner_len]
    }

    /// The file name without `.jsonl` (Claude Code names it after the session).
    pub fn stem(&self) -> &str {
        let name = &self.key[self.owner_len + 1..];
        &name[..name.len() - EXTENSION.len()]
    }

    fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.owner()).join(&self.key[self.owner_len + 1..])
    }
}

impl std::fmt::Display for TranscriptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)
    }
}

/// One listed transcript and its modification time, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: TranscriptKey,
    pub mtime: Result<UnixMicros, String>,
}

/// What listing the transcripts dir found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Every transcript found, sorted by key.
    pub transcripts: Vec<Listed>,
    /// Whether the dir exists (a missing one lists nothing, and says
    /// nothing about what was there before: a folder not mounted yet).
    pub found: bool,
    /// Owner folders that could not be listed in full: their transcripts
    /// may be missing from `transcripts` while still on disk.
    pub unlisted_owners: BTreeSet<String>,
}

impl Listing {
    /// Whether a transcript this listing does not hold is gone from the
    /// folder, not merely out of sight.
    pub fn shows_gone(&self, key: &TranscriptKey) -> bool {
        self.found && !self.unlisted_owners.contains(key.owner())
    }
}

/// Lists every transcript under `dir` (following symlinks), sorted by key. A
/// missing `dir` has none; one that cannot be read is an error. An owner
/// folder that cannot be listed is logged and left out, and named in
/// [`Listing::unlisted_owners`].
pub fn list(dir: &Path) -> io::Result<Listing> {
    let owners = match std::fs::read_dir(dir) {
        Ok(owners) => owners,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
        Err(err) => return Err(err),
    };
    let mut listing = Listing {
        found: true,
        ..Listing::default()
    };
    for owner in owners {
        let owner = owner?;
        let Ok(owner_name) = owner.file_name().into_string() else {
            continue;
        };
        let files = match std::fs::metadata(owner.path()) {
            Ok(meta) if !meta.is_dir() => continue,
            Ok(_) => std::fs::read_dir(owner.path()),
            Err(err) => Err(err),
        };
        let files = match files {
            Ok(files) => files,
            Err(err) => {
                tracing::warn!(owner = %owner_name, error = %err, "cannot list a transcripts folder; leaving it out");
                listing.unlisted_owners.insert(owner_name);
                continue;
            }
        };
        for file in files {
            let Ok(file) = file else {
                listing.unlisted_owners.insert(owner_name.clone());
                continue;
            };
            let Ok(name) = file.file_name().into_string() else {
                continue;
            };
            let Some(key) = TranscriptKey::from_parts(&owner_name, &name) else {
                continue;
            };
            let mtime = match std::fs::metadata(file.path()) {
                Ok(meta) if meta.is_file() => meta.modified().map(to_micros).map_err(describe),
                Ok(_) => continue,
                Err(err) => Err(describe(err)),
            };
            listing.transcripts.push(Listed { key, mtime });
        }
    }
    listing.transcripts.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(listing)
}

/// The newest modification time among the transcripts under `dir`.
pub fn newest_mtime(dir: &Path) -> io::Result<Option<UnixMicros>> {
    Ok(list(dir)?
        .transcripts
        .into_iter()
        .filter_map(|listed| listed.mtime.ok())
        .max())
}

/// A transcript as read: when (taken before reading), its bytes and their hash.
pub struct ReadTranscript {
    pub read_time: UnixMicros,
    pub content: Vec<u8>,
    pub hash: String,
}

/// Takes the read time, then reads and hashes the transcript.
pub fn read(dir: &Path, key: &TranscriptKey) -> Result<ReadTranscript, String> {
    let read_time = UnixMicros::now();
    let content = std::fs::read(key.path(dir))
        .map_err(|err| format!("cannot read the transcript: {}", describe(err)))?;
    let hash = content_hash(&content);
    Ok(ReadTranscript {
        read_time,
        content,
        hash,
    })
}

/// Hex SHA-256 of `content`.
pub fn content_hash(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn to_micros(time: std::time::SystemTime) -> UnixMicros {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => UnixMicros(i64::try_from(after.as_micros()).unwrap_or(i64::MAX)),
        Err(before) => {
            UnixMicros(-i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX))
        }
    }
}

/// An I/O error without the path it happened on (io::Error never adds one).
fn describe(err: io::Error) -> String {
    err.to_string()
}

/// One transcript's content, for a processor to read records from.
pub struct Transcript {
    key: TranscriptKey,
    content: Vec<u8>,
    malformed: Cell<u64>,
}

impl Transcript {
    pub fn new(key: TranscriptKey, content: Vec<u8>) -> Self {
        Self {
            key,
            content,
            malformed: Cell::new(0),
        }
    }

    pub fn key(&self) -> &TranscriptKey {
        &self.key
    }

    /// The non-blank lines, each parsed as `T`, in order. A line that is not
    /// JSON, or whose fields `T` reads have the wrong type (a negative token
    /// count...), is skipped and counted in [`Self::malformed_lines`]. Read
    /// the records once per transcript, or the count adds up twice.
    pub fn records<'a, T: Deserialize<'a>>(&'a self) -> impl Iterator<Item = T> + 'a {
        self.content
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .filter_map(|line| match serde_json::from_slice(line) {
                Ok(record) => Some(record),
                Err(_) => {
                    self.malformed.set(self.malformed.get() + 1);
                    None
                }
            })
    }

    pub fn malformed_lines(&self) -> u64 {
        self.malformed.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let cases = [
            ("alice/s1.jsonl", Some(("alice", "s1"))),
            (
                "-home-a-proj/0b3c-uuid.jsonl",
                Some(("-home-a-proj", "0b3c-uuid")),
            ),
            ("alice/.jsonl", None),
            ("alice/s1.json", None),
            ("s1.jsonl", None),
            ("/s1.jsonl", None),
            ("alice/sub/s1.jsonl", None),
            ("../s1.jsonl", None),
            ("./s1.jsonl", None),
            ("al\nice/s1.jsonl", None),
            ("", None),
        ];
        for (key, expected) in cases {
            let parsed = TranscriptKey::parse(key);
            assert_eq!(
                parsed.as_ref().map(|k| (k.owner(), k.stem())),
                expected,
                "{key:?}"
            );
            if let Some(parsed) = parsed {
                assert_eq!(parsed.as_str(), key);
            }
        }
        let long_owner = "o".repeat(MAX_KEY_LEN);
        assert_eq!(TranscriptKey::from_parts(&long_owner, "s.jsonl"), None);
    }

    #[test]
    fn records_skip_and_count_malformed_lines() {
        #[derive(Deserialize)]
        struct Line {
            n: Option<u32>,
        }
        let content =
            b"{\"n\": 1}\n\nnot json\n  \n{\"n\": -4}\n{\"other\": true}\r\n{\"n\": 3}\n{\"n\": 4"
                .to_vec();
        let transcript = Transcript::new(TranscriptKey::parse("a/b.jsonl").unwrap(), content);
        let seen: Vec<Option<u32>> = transcript.records::<Line>().map(|l| l.n).collect();
        assert_eq!(seen, [Some(1), None, Some(3)]);
        assert_eq!(
            transcript.malformed_lines(),
            3,
            "'not json', the negative count and the half-written last line"
        );
    }

    #[test]
    fn listing_follows_the_layout_and_a_missing_dir_is_empty() -> anyhow::Result<()> {
        let key = |k: &str| TranscriptKey::parse(k).ok_or_else(|| anyhow::anyhow!("bad key {k}"));
        let dir = tempfile::tempdir()?;
        let absent = list(&dir.path().join("absent"))?;
        assert_eq!(absent, Listing::default());
        let somewhere = key("alice/s1.jsonl")?;
        assert!(
            !absent.shows_gone(&somewhere),
            "a missing dir shows nothing gone"
        );
        std::fs::create_dir_all(dir.path().join("bob"))?;
        std::fs::create_dir_all(dir.path().join("alice/nested.jsonl"))?;
        std::fs::write(dir.path().join("alice/s2.jsonl"), "{}")?;
        std::fs::write(dir.path().join("alice/notes.txt"), "x")?;
        std::fs::write(dir.path().join("bob/s1.jsonl"), "{}")?;
        std::fs::write(dir.path().join("stray.jsonl"), "{}")?;
        std::os::unix::fs::symlink("/nonexistent/target", dir.path().join("bob/gone.jsonl"))?;
        let listing = list(dir.path())?;
        assert!(listing.found && listing.unlisted_owners.is_empty());
        assert!(listing.shows_gone(&somewhere));
        let listed = listing.transcripts;
        let keys: Vec<_> = listed.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["alice/s2.jsonl", "bob/gone.jsonl", "bob/s1.jsonl"]);
        assert!(listed[0].mtime.is_ok());
        let err = listed[1]
            .mtime
            .clone()
            .expect_err("a dangling symlink has no mtime");
        assert!(!err.contains("/nonexistent"), "no server paths: {err}");

        // An owner folder out of reach (a sync target not mounted) hides its
        // transcripts but shows none of them gone.
        std::os::unix::fs::symlink("/nonexistent/folder", dir.path().join("carol"))?;
        let listing = list(dir.path())?;
        assert_eq!(listing.transcripts.len(), 3);
        assert_eq!(
            listing.unlisted_owners,
            BTreeSet::from(["carol".to_string()])
        );
        assert!(!listing.shows_gone(&key("carol/s9.jsonl")?));
        assert!(listing.shows_gone(&key("bob/s9.jsonl")?));
        Ok(())
    }

    #[test]
    fn reading_hashes_the_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/b.jsonl"), "hello").unwrap();
        let key = TranscriptKey::parse("a/b.jsonl").unwrap();
        let before = UnixMicros::now();
        let read = read(dir.path(), &key).unwrap();
        assert!(read.read_time >= before);
        assert_eq!(read.content, b"hello");
        assert_eq!(
            read.hash,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let missing = super::read(dir.path(), &TranscriptKey::parse("a/c.jsonl").unwrap());
        let err = missing.err().unwrap();
        assert!(
            err.starts_with("cannot read the transcript")
                && !err.contains(dir.path().to_str().unwrap()),
            "{err}"
        );
    }
}
