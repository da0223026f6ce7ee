//! Building a server: the database (migrations applied), the leases, the
//! shim's memory and every service over them, ready for [`Server::serve`];
//! and the handles tests and the process take from it.

use tokio_util::sync::CancellationToken;

use super::Server;
use super::front_door::FrontDoorState;
use crate::auth::{Authenticator, Role};
use crate::config::Config;
use crate::events::{Compactor, Watchers};
use crate::lessons::Journal;
use crate::processors::{self, ProcessorsService, Registration};
use crate::reconciler::Reconciler;
use crate::sessions::SessionsService;
use crate::storage::{Db, Leases};
use crate::tasks::TasksService;
use crate::webhooks::DedupStore;

/// Applies a reloaded configuration's run-time settings.
#[derive(Clone)]
pub struct Reloader {
    journal: Journal,
    reconciler: Reconciler,
}

impl Reloader {
    pub fn apply(&self, config: &Config) {
        let settings = config.lessons.journal_settings();
        self.journal.update_settings(|current| *current = settings);
        self.reconciler.apply_config(&config.reconciler);
    }
}

impl Server {
    /// Opens the database (applying migrations) and builds the services.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        Self::open_with_processors(config, Vec::new()).await
    }

    /// Like [`Server::open`], with `extra` processors beside the built-in
    /// ones (an embedder's own passes over the transcripts).
    pub async fn open_with_processors(
        config: Config,
        extra: Vec<Registration>,
    ) -> anyhow::Result<Self> {
        let tls = config.tls.load()?;
        let db = Db::open_configured(
            &config.data_dir,
            config.database_url.as_ref(),
            config.storage.settings(),
        )
        .await?;
        let replica = config.replica();
        let leases = match &config.database_url {
            Some(url) => {
                Leases::shared(url.connect_options().map_err(anyhow::Error::msg)?, &replica)
            }
            None => Leases::local(&replica),
        };
        let capacity = config.webhooks.dedup_capacity;
        let deliveries = match db.postgres_pool() {
            Some(pool) => DedupStore::shared(pool.clone(), capacity),
            None => DedupStore::open(&config.data_dir, capacity).await?,
        };
        let journal = Journal::new(db.clone(), config.lessons.journal_settings());
        // The shim calls the public API like any client; with auth on it
        // gets a token of its own, valid for this process only.
        let shim_token =
            (!config.auth.tokens.is_empty()).then(|| hex::encode(rand::random::<[u8; 32]>()));
        let auth = Authenticator::new(
            config
                .auth
                .tokens
                .iter()
                .map(|token| (token.name.as_str(), token.role, token.token.as_str()))
                .chain(
                    shim_token
                        .as_deref()
                        .map(|token| ("webhook shim (internal)", Role::Webhook, token)),
                ),
        );
        let streams = CancellationToken::new();
        let watchers = Watchers::new(db.clone(), config.events.progress_interval, streams.clone());
        let compactor = Compactor::new(db.clone(), config.events.retention);
        let sessions = SessionsService::new(db.clone(), config.sessions.quarantine_limits());
        let tasks = TasksService::new(db.clone(), journal.clone(), config.tasks.settings());
        let reconciler = Reconciler::open(
            db.clone(),
            leases.clone(),
            tasks.clone(),
            config.reconciler.clone(),
        )
        .await?;
        let mut registrations = processors::builtin(
            config.processors.usage.settings(),
            config.processors.tool_errors.settings(),
            config.processors.tool_error_burst_threshold,
            journal.clone(),
        );
        registrations.extend(extra);
        let (processors, scheduler) = ProcessorsService::new(
            db.clone(),
            leases.clone(),
            config.processors.transcripts_dir.clone(),
            registrations,
        )?;
        scheduler.end_interrupted_passes().await?;
        Ok(Self {
            config,
            db,
            journal,
            sessions,
            tasks,
            reconciler,
            processors,
            scheduler,
            watchers,
            compactor,
            streams,
            front_door: FrontDoorState::new(auth),
            deliveries,
            leases,
            shim_token,
            tls,
        })
    }

    /// The Sessions service (its timers also run on their own schedule).
    pub fn sessions(&self) -> SessionsService {
        self.sessions.clone()
    }

    /// The Watch streams (to count the open ones).
    pub fn watchers(&self) -> Watchers {
        self.watchers.clone()
    }

    /// The change-log retention job (it also runs on its own schedule).
    pub fn compactor(&self) -> Compactor {
        self.compactor.clone()
    }

    /// The Tasks service.
    pub fn tasks(&self) -> TasksService {
        self.tasks.clone()
    }

    /// The Reconciler (its loop also runs on its own schedule).
    pub fn reconciler(&self) -> Reconciler {
        self.reconciler.clone()
    }

    pub fn reloader(&self) -> Reloader {
        Reloader {
            journal: self.journal.clone(),
            reconciler: self.reconciler.clone(),
        }
    }
}
