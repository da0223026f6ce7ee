//! The journal service: the kill-switch, dedup and idempotency around the
//! store, for the gRPC adapter and for bosun's own recorders.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::FutureExt;

use super::{
    Lesson, LessonError, LessonFilter, LessonPage, LessonPatch, LessonStats, NewLesson, Recorded,
    dedup_cutoff, store,
};
use crate::idempotency::{self, IdempotencyKey};
use crate::pagination::PageRequest;
use crate::storage::sql::Conn;
use crate::storage::{Db, StoreError};
use crate::time::UnixMicros;

/// The journal's run-time settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSettings {
    /// The kill-switch: when false nothing touches the lessons table.
    pub enabled: bool,
    /// How long an AUTO lesson suppresses an equal one; zero disables dedup.
    pub dedup_window: Duration,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            dedup_window: Duration::from_secs(3600),
        }
    }
}

/// What [`Journal::record_auto`] did. It never fails its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum AutoLesson {
    Recorded(Lesson),
    Deduplicated(Lesson),
    /// The kill-switch is off; nothing was touched.
    Disabled,
    /// The journal failed; the failure was logged and rolled back alone.
    Failed,
}

/// The lessons journal; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    db: Db,
    settings: Arc<RwLock<JournalSettings>>,
}

impl Journal {
    pub fn new(db: Db, settings: JournalSettings) -> Self {
        Self {
            db,
            settings: Arc::new(RwLock::new(settings)),
        }
    }

    pub fn settings(&self) -> JournalSettings {
        match self.settings.read() {
            Ok(settings) => *settings,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Changes the settings at run time and returns the new ones.
    pub fn update_settings(&self, change: impl FnOnce(&mut JournalSettings)) -> JournalSettings {
        let mut settings = match self.settings.write() {
            Ok(settings) => settings,
            Err(poisoned) => poisoned.into_inner(),
        };
        change(&mut settings);
        tracing::info!(enabled = settings.enabled, dedup_window = ?settings.dedup_window, "lessons settings changed");
        *settings
    }

    /// RecordLesson: dedup for AUTO lessons, idempotent on `request_id`.
    pub async fn record(
        &self,
        new: NewLesson,
        request_id: Option<String>,
    ) -> Result<Recorded, LessonError> {
        let settings = self.settings();
        if !settings.enabled {
            return Ok(Recorded::Disabled);
        }
        let key = IdempotencyKey::new("lessons.record", request_id, &new);
        self.db
            .write(move |conn| {
                async move {
                    idempotency::once(conn, key.as_ref(), |conn| {
                        async move { Ok(record_in(conn, &new, settings.dedup_window).await?) }
                            .boxed()
                    })
                    .await
                }
                .boxed()
            })
            .await
    }

    /// Records a lesson bosun noticed itself (a gate rollback, an exhausted
    /// retry budget...) inside the caller's write transaction. Whatever goes
    /// wrong in the journal is logged and rolled back alone: the caller's
    /// change still commits.
    pub async fn record_auto(&self, conn: &mut Conn<'_>, new: NewLesson) -> AutoLesson {
        let settings = self.settings();
        if !settings.enabled {
            return AutoLesson::Disabled;
        }
        let new = NewLesson {
            source: super::LessonSource::Auto,
            ..new
        };
        let window = settings.dedup_window;
        let outcome = async {
            conn.begin_savepoint().await?;
            let recorded = record_in(conn, &new, window).await;
            conn.end_savepoint(recorded.is_ok()).await?;
            recorded
        }
        .await;
        match outcome {
            Ok(Recorded::Recorded(lesson)) => AutoLesson::Recorded(lesson),
            Ok(Recorded::Deduplicated(lesson)) => AutoLesson::Deduplicated(lesson),
            Ok(Recorded::Disabled) => AutoLesson::Disabled,
            Err(err) => {
                tracing::warn!(lesson_type = %new.lesson_type, error = ?err, "auto lesson not recorded");
                AutoLesson::Failed
            }
        }
    }

    pub async fn get(&self, id: i64) -> Result<Lesson, LessonError> {
        self.ensure_enabled()?;
        store::get(&mut self.db.read().await?.conn(), id)
            .await?
            .ok_or(LessonError::NotFound(id))
    }

    /// `None` when the journal is switched off.
    pub async fn list(
        &self,
        filter: &LessonFilter,
        page: PageRequest,
    ) -> Result<Option<LessonPage>, LessonError> {
        if !self.settings().enabled {
            return Ok(None);
        }
        let mut reader = self.db.read().await?;
        Ok(Some(store::list(&mut reader.conn(), filter, page).await?))
    }

    pub async fn update(&self, id: i64, patch: LessonPatch) -> Result<Lesson, LessonError> {
        self.ensure_enabled()?;
        self.db
            .write(move |conn| {
                async move {
                    let lesson = store::get(&mut *conn, id)
                        .await?
                        .ok_or(LessonError::NotFound(id))?;
                    let updated = patch.apply(&lesson, UnixMicros::now());
                    store::save(conn, &updated).await?;
                    Ok(updated)
                }
                .boxed()
            })
            .await
    }

    /// `None` when the journal is switched off.
    pub async fn stats(&self) -> Result<Option<LessonStats>, LessonError> {
        if !self.settings().enabled {
            return Ok(None);
        }
        // One read transaction, so the counts agree with each other.
        let mut snapshot = self.db.snapshot().await?;
        let stats = store::stats(&mut snapshot.conn()).await?;
        snapshot.finish().await?;
        Ok(Some(stats))
    }

    fn ensure_enabled(&self) -> Result<(), LessonError> {
        if self.settings().enabled {
            Ok(())
        } else {
            Err(LessonError::Disabled)
        }
    }
}

/// Records `new` on `conn` unless an equal AUTO lesson is inside the window.
async fn record_in(
    conn: &mut Conn<'_>,
    new: &NewLesson,
    window: Duration,
) -> Result<Recorded, StoreError> {
    let now = UnixMicros::now();
    if let Some(cutoff) = dedup_cutoff(new.source, window, now)
        && let Some(existing) = store::find_duplicate(conn, new, cutoff).await?
    {
        return Ok(Recorded::Deduplicated(existing));
    }
    Ok(Recorded::Recorded(store::insert(conn, new, now).await?))
}
