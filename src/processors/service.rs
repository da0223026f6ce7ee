//! The Processors service: what the gRPC adapter calls. Names are checked
//! against the configured processors here; passes are handed to the
//! processor's worker (see [`super::scheduler`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::{OwnedMutexGuard, oneshot};

use super::scheduler::{Inner, ManualRun, Scheduler, Slot};
use super::{
    Forget, ProcessorError, ProcessorRun, ProcessorSettings, ProcessorState, Registration,
    StateFilter, ToolErrorFilter, ToolErrorReport, UsageFilter, UsageReport, decide, products,
    store, transcript,
};
use crate::pass_metrics::PassFigures;
use crate::storage::{Db, Lease, Leases};
use crate::time::UnixMicros;

/// A processor as ListProcessors shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorView {
    pub name: String,
    pub description: String,
    pub settings: ProcessorSettings,
    pub running: bool,
    /// The newest pass that ended.
    pub last_run: Option<ProcessorRun>,
    /// When the newest pass started, whatever its outcome.
    pub last_run_time: Option<UnixMicros>,
    pub next_run_time: Option<UnixMicros>,
    pub newest_transcript_time: Option<UnixMicros>,
    /// The lag warning, when there is one.
    pub lag: Option<String>,
    pub quarantined: i64,
}

/// The Processors service; cheap to clone.
#[derive(Clone)]
pub struct ProcessorsService {
    inner: Arc<Inner>,
}

impl ProcessorsService {
    /// The service and its scheduler (which the server runs) over the
    /// processors in `registrations`, whose names must be unique slugs; each
    /// processor's passes run under its lease from `leases`.
    pub fn new(
        db: Db,
        leases: Leases,
        transcripts_dir: PathBuf,
        mut registrations: Vec<Registration>,
    ) -> anyhow::Result<(Self, Scheduler)> {
        registrations.sort_by(|a, b| a.processor.name().cmp(b.processor.name()));
        let mut names = HashSet::new();
        for registration in &registrations {
            let name = registration.processor.name();
            anyhow::ensure!(
                crate::validate::is_slug(name),
                "processor name {name:?} is not a slug"
            );
            anyhow::ensure!(names.insert(name), "two processors are named {name:?}");
        }
        let (slots, manual_rxs) = registrations.into_iter().map(Slot::new).unzip();
        let inner = Arc::new(Inner {
            db,
            leases,
            dir: Arc::new(transcripts_dir),
            started: UnixMicros::now(),
            slots,
            figures: PassFigures::default(),
        });
        let scheduler = Scheduler {
            inner: inner.clone(),
            manual_rxs,
        };
        Ok((Self { inner }, scheduler))
    }

    /// The processors' names, in order.
    pub fn known(&self) -> Vec<String> {
        self.inner
            .slots
            .iter()
            .map(|slot| slot.name().to_string())
            .collect()
    }

    fn slot(&self, field: &str, name: &str) -> Result<&Slot, ProcessorError> {
        self.inner
            .slots
            .iter()
            .find(|slot| slot.name() == name)
            .ok_or_else(|| ProcessorError::unknown(field, name, self.known()))
    }

    /// Processors by name after `after`; the name to continue after, if more.
    pub async fn list(
        &self,
        after: Option<&str>,
        size: u32,
    ) -> Result<(Vec<ProcessorView>, Option<String>), ProcessorError> {
        let mut slots: Vec<&Slot> = self
            .inner
            .slots
            .iter()
            .filter(|slot| after.is_none_or(|after| slot.name() > after))
            .take(size as usize + 1)
            .collect();
        let more = slots.len() > size as usize;
        slots.truncate(size as usize);
        let newest = self.newest_transcript_time().await;
        let mut views = Vec::with_capacity(slots.len());
        for slot in slots {
            views.push(self.view(slot, newest).await?);
        }
        let next = more
            .then(|| views.last().map(|view| view.name.clone()))
            .flatten();
        Ok((views, next))
    }

    async fn newest_transcript_time(&self) -> Option<UnixMicros> {
        let dir = self.inner.dir.clone();
        match tokio::task::spawn_blocking(move || transcript::newest_mtime(&dir)).await {
            Ok(Ok(newest)) => newest,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot list the transcripts dir");
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "listing the transcripts dir failed");
                None
            }
        }
    }

    async fn view(
        &self,
        slot: &Slot,
        newest: Option<UnixMicros>,
    ) -> Result<ProcessorView, ProcessorError> {
        let mut reader = self.inner.db.read().await?;
        let mut conn = reader.conn();
        let name = slot.name();
        let settings = slot.registration.settings;
        let last_run = store::last_ended_run(&mut conn, name).await?;
        let latest = store::latest(&mut conn, name).await?;
        slot.advance_last_run(latest.start_time);
        let last_run_time = slot.last_run_time();
        let lag = decide::lag_warning(
            settings.enabled,
            settings.cadence,
            last_run.as_ref().map(|run| run.start_time),
            newest,
        );
        Ok(ProcessorView {
            name: name.to_string(),
            description: slot.registration.processor.description().to_string(),
            settings,
            running: slot.is_running() || latest.running.is_some(),
            last_run,
            last_run_time,
            next_run_time: slot.next_run(self.inner.started),
            newest_transcript_time: newest,
            lag,
            quarantined: store::count_quarantined(&mut conn, name).await?,
        })
    }

    /// Runs a pass of `name` now (trigger MANUAL) and returns it; `Running`
    /// while a pass of it is under way here or on another replica.
    pub async fn run(&self, name: &str) -> Result<ProcessorRun, ProcessorError> {
        let slot = self.slot("name", name)?;
        if !slot.registration.settings.enabled {
            return Err(ProcessorError::Disabled(name.to_string()));
        }
        let (guard, lease) = self.hold(slot).await?;
        let (reply, answer) = oneshot::channel();
        slot.manual_tx
            .send(ManualRun {
                guard,
                lease,
                reply,
            })
            .await
            .map_err(|_| ProcessorError::ShuttingDown)?;
        Ok(answer.await.map_err(|_| ProcessorError::ShuttingDown)??)
    }

    /// State rows by processor then transcript, after the cursor; the cursor
    /// to continue after, if more.
    pub async fn states(
        &self,
        filter: &StateFilter,
        after: Option<(String, String)>,
        size: u32,
    ) -> Result<(Vec<ProcessorState>, Option<(String, String)>), ProcessorError> {
        if let Some(processor) = &filter.processor {
            self.slot("processor", processor)?;
        }
        let mut states = store::list_states(
            &mut self.inner.db.read().await?.conn(),
            filter,
            after,
            size + 1,
        )
        .await?;
        let next = if states.len() > size as usize {
            states.truncate(size as usize);
            states
                .last()
                .map(|state| (state.processor.clone(), state.transcript.clone()))
        } else {
            None
        };
        Ok((states, next))
    }

    /// `slot`'s lock and lease, so no pass of it runs anywhere; `Running`
    /// while one does.
    async fn hold(&self, slot: &Slot) -> Result<(OwnedMutexGuard<()>, Lease), ProcessorError> {
        let running = || ProcessorError::Running(slot.name().to_string());
        let guard = slot.lock.clone().try_lock_owned().map_err(|_| running())?;
        let lease = self.inner.take_lease(slot).await?.ok_or_else(running)?;
        Ok((guard, lease))
    }

    /// Forgets state (ABORTED while a pass runs, on any replica); returns
    /// how much.
    pub async fn reset(&self, forget: Forget) -> Result<u64, ProcessorError> {
        let slot = self.slot("processor", &forget.processor)?;
        let (guard, lease) = self.hold(slot).await?;
        let fence = lease.fence();
        let forgotten = self
            .inner
            .db
            .write(move |conn| {
                async move {
                    fence.check(conn).await?;
                    store::forget(conn, &forget).await
                }
                .boxed()
            })
            .await;
        lease.release().await;
        drop(guard);
        Ok(forgotten?)
    }

    /// The figures of the passes that ended, for /metrics.
    pub fn pass_figures(&self) -> PassFigures {
        self.inner.figures.clone()
    }

    /// One page of transcript usage and the totals over all matching, read
    /// in one transaction so they agree.
    pub async fn usage(
        &self,
        filter: &UsageFilter,
        after: Option<&str>,
        size: u32,
    ) -> Result<UsageReport, ProcessorError> {
        let mut snapshot = self.inner.db.snapshot().await?;
        let mut transcripts =
            products::usage_page(&mut snapshot.conn(), filter, after, size + 1).await?;
        let by_model = products::usage_totals(&mut snapshot.conn(), filter).await?;
        snapshot.finish().await?;
        let next_after = if transcripts.len() > size as usize {
            transcripts.truncate(size as usize);
            transcripts.last().map(|usage| usage.transcript.clone())
        } else {
            None
        };
        let mut total = super::TokenUsage::default();
        by_model.iter().for_each(|(_, usage)| total.add(usage));
        Ok(UsageReport {
            transcripts,
            next_after,
            by_model,
            total,
        })
    }

    /// One page of transcripts' failed tool results and the totals over all
    /// matching, read in one transaction so they agree.
    pub async fn tool_errors(
        &self,
        filter: &ToolErrorFilter,
        after: Option<&str>,
        size: u32,
    ) -> Result<ToolErrorReport, ProcessorError> {
        let mut snapshot = self.inner.db.snapshot().await?;
        let mut transcripts =
            products::tool_errors_page(&mut snapshot.conn(), filter, after, size + 1).await?;
        let (by_tool, errors, bursts) =
            products::tool_error_totals(&mut snapshot.conn(), filter).await?;
        snapshot.finish().await?;
        let next_after = if transcripts.len() > size as usize {
            transcripts.truncate(size as usize);
            transcripts.last().map(|t| t.transcript.clone())
        } else {
            None
        };
        Ok(ToolErrorReport {
            transcripts,
            next_after,
            by_tool,
            errors,
            bursts,
        })
    }
}
