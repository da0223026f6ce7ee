# shellcheck shell=bash
# PostgreSQL for the tests in tests/postgres (sourced by scripts/test and
# scripts/test-postgres). The tests start their own throwaway cluster
# (tests/common/postgres.rs); this only makes sure the server binaries are
# installed: Debian's `postgresql` package, through apt-get, when missing.
# Nothing runs as a service: the package's own cluster is not used.

# Where initdb is, if PostgreSQL is installed (TEST_BOSUN_PG_BINDIR wins).
postgres_bindir() {
  if [[ -n "${TEST_BOSUN_PG_BINDIR:-}" ]]; then
    echo "$TEST_BOSUN_PG_BINDIR"
    return
  fi
  local bin
  bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [[ -n "$bin" && -x "$bin/initdb" ]]; then
    echo "$bin"
  elif command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
    pg_config --bindir
  fi
}

# Installs Debian's postgresql package when no server binaries are found.
ensure_postgres() {
  if [[ -n "$(postgres_bindir)" ]]; then
    return
  fi
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "PostgreSQL is not installed: install Debian's postgresql package (or set TEST_BOSUN_PG_BINDIR)" >&2
    return 1
  fi
  echo "== installing PostgreSQL (Debian's postgresql package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
  [[ -n "$(postgres_bindir)" ]]
}
