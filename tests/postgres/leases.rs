//! Leases (background work on one replica at a time) when a lease's
//! connection ends while its replica lives: the server ends it
//! (`pg_terminate_backend`, as an operator or a failover does), or it
//! would end it for sitting idle (`idle_session_timeout`, as proxies and
//! NATs drop idle connections). The lease must then count as lost, so the
//! pass stops, and another replica can take the job; and a lease in use
//! must not look idle.

use std::time::Duration;

use bosun::storage::Leases;
use bosun::storage::lease::{CHECK_EVERY, CHECK_TIMEOUT};
use sqlx::postgres::PgConnectOptions;
use tokio::sync::oneshot;

use super::{migrated_database, pool};

/// The job the tests lease, and the advisory lock it maps to.
pub(super) const JOB: &str = "lease_test_job";
/// (pg_locks lists every database's locks; each test has a database.)
const LOCK: &str = "classid = 1651471214 AND objid = hashtext('lease_test_job')::oid \
     AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

pub(super) fn leases(url: &str, replica: &str) -> Leases {
    let options: PgConnectOptions = url.parse().expect("a PostgreSQL URL");
    Leases::shared(options, replica)
}

/// The backend holding the lease's lock, if any.
async fn holder(admin: &sqlx::PgPool) -> Option<i32> {
    sqlx::query_scalar(&format!(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND {LOCK}"
    ))
    .fetch_optional(admin)
    .await
    .unwrap()
}

/// Ends the backend holding the job's lock, as an operator or a failover
/// would; its replica is not told.
pub(super) async fn end_the_holder(admin: &sqlx::PgPool) {
    let pid = holder(admin).await.expect("the lock is held");
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(admin)
        .await
        .unwrap();
    assert!(ended);
}

/// The ended backend gives its locks back as it exits: waits for that on
/// the lock itself.
pub(super) async fn wait_until_free(admin: &sqlx::PgPool) {
    let mut waiter = admin.acquire().await.unwrap();
    sqlx::query("SET lock_timeout = '10s'")
        .execute(&mut *waiter)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_lock(1651471214, hashtext($1))")
        .bind(JOB)
        .execute(&mut *waiter)
        .await
        .expect("the lock is freed");
    sqlx::query("SELECT pg_advisory_unlock(1651471214, hashtext($1))")
        .bind(JOB)
        .execute(&mut *waiter)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lease_whose_connection_the_server_ends_is_lost_and_its_pass_stops() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let admin = pool(&url, 2).await;
    let (replica_a, replica_b) = (leases(&url, "a"), leases(&url, "b"));

    let (started_tx, started_rx) = oneshot::channel();
    let leases_a = replica_a.clone();
    let pass = tokio::spawn(async move {
        leases_a
            .run(JOB, async move {
                let _ = started_tx.send(());
                // A pass that would run for ever.
                std::future::pending::<()>().await
            })
            .await
    });
    started_rx.await.expect("the pass started under the lease");
    assert!(
        replica_b.try_take(JOB).await.unwrap().is_none(),
        "held by a"
    );

    end_the_holder(&admin).await;

    let stopped = tokio::time::timeout(CHECK_EVERY + CHECK_TIMEOUT + Duration::from_secs(5), pass)
        .await
        .expect("the pass stops once its lease is lost")
        .unwrap();
    assert_eq!(stopped, None, "a pass whose lease was lost has no outcome");
    let mut registry = prometheus_client::registry::Registry::with_prefix("bosun");
    replica_a.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"bosun_leases_lost_total{job="lease_test_job"} 1"#),
        "{text}"
    );

    wait_until_free(&admin).await;
    let taken = replica_b.try_take(JOB).await.unwrap();
    let taken = taken.expect("replica b takes the job over");
    assert!(!taken.is_lost());
    taken.release().await;
    assert_eq!(holder(&admin).await, None, "released at once");
}

#[tokio::test]
async fn a_lease_in_use_outlives_the_servers_idle_session_timeout() {
    let Some(url) = migrated_database().await else {
        return;
    };
    let admin = pool(&url, 1).await;
    // Sessions idle this long are ended by the server (new sessions only).
    let idle = Duration::from_secs(2);
    assert!(CHECK_EVERY < idle);
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&admin)
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{database}\" SET idle_session_timeout = '{}ms'",
        idle.as_millis()
    ))
    .execute(&admin)
    .await
    .unwrap();

    let replica = leases(&url, "a");
    let lease = replica.try_take(JOB).await.unwrap().expect("free");
    let pid = holder(&admin).await.expect("the lock is held");
    // Time is the stimulus: the pass goes on for twice the idle timeout,
    // long enough for the server to end a session that sat idle.
    tokio::time::sleep(idle * 2 + CHECK_EVERY).await;
    assert!(!lease.is_lost(), "the lease's connection was kept in use");
    assert_eq!(
        holder(&admin).await,
        Some(pid),
        "the same session still holds the lock"
    );
    lease.release().await;
    assert_eq!(holder(&admin).await, None);
}
