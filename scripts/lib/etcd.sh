#!/usr/bin/env bash
# etcd for the benchmark suite's etcd peer (`cargo bench --bench bosun --
# --only etcd`), which runs this when no etcd binary is found. Installs
# Debian's etcd-server package through apt-get when /usr/bin/etcd is
# missing. Nothing runs as a service: the suite starts its own throwaway
# etcd on a temp data dir and loopback ports. BENCH_ETCD=<path> skips this.
set -euo pipefail

if [[ -x /usr/bin/etcd ]]; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "etcd is not installed: install Debian's etcd-server package (apt-get install etcd-server), or set BENCH_ETCD to an etcd binary" >&2
  exit 1
fi
echo "== installing etcd (Debian's etcd-server package)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >&2
[[ -x /usr/bin/etcd ]]
