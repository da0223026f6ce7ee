//! The benchmarks' throwaway PostgreSQL cluster, when no `--database-url`
//! is given: the tests' (`tests/common/pg_cluster.rs`), with PostgreSQL's
//! default durability (fsync on).

#[path = "../../../tests/common/pg_cluster.rs"]
mod pg_cluster;

use anyhow::Context;

pub(super) use pg_cluster::Cluster;

/// Starts the cluster.
pub(super) fn start() -> anyhow::Result<Cluster> {
    let bindir = pg_cluster::find_bindir().context(
        "--postgres: no PostgreSQL binaries (set TEST_BOSUN_PG_BINDIR, or install \
         Debian's postgresql package)",
    )?;
    Cluster::start(&bindir, "bosun-bench-pg-", &[])
}
