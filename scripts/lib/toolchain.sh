# shellcheck shell=bash
# The pinned toolchain for the clients, sourced by scripts/gen-clients,
# scripts/test-clients and scripts/smoke-grpcurl. Everything installs from the
# package registries (PyPI, npm, the Go module proxy) into gitignored places:
# .tools/venv (Python), .tools/bin (Go binaries), clients/typescript/node_modules.
# Each ensure_* function does nothing when the pinned version is already there.

BUF_VERSION=1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
GRPCURL_VERSION=v1.9.3
GRPC_HEALTH_PROBE_VERSION=v0.4.40
GHZ_VERSION=v0.120.0
# ccusage: the token counter Claude Code users run; tests/usage_ccusage/ checks
# bosun's usage totals against it. 20.0.11 ships a native binary per platform
# (an optional npm dependency) behind a Node launcher (Node >= 20.19.4).
CCUSAGE_VERSION=20.0.11
WEBHOOK_EXAMPLES_VERSION=7.6.1

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_DIR="$REPO_ROOT/.tools"
VENV="$TOOLS_DIR/venv"
TOOLS_BIN="$TOOLS_DIR/bin"

# buf from the npm registry, pinned.
buf() {
  npx --yes "@bufbuild/buf@${BUF_VERSION}" "$@"
}

# The venv with the Python generators and test tools
# (clients/python/requirements-dev.txt) and the client itself, editable.
ensure_python_tools() {
  local requirements="$REPO_ROOT/clients/python/requirements-dev.txt"
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(cat "$requirements" "$REPO_ROOT/clients/python/pyproject.toml" | sha256sum | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  echo "-- installing Python tools into .tools/venv"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$REPO_ROOT/clients/python"
  echo "$want" >"$stamp"
}

# A Go binary at a pinned module version into .tools/bin (one stamp per
# binary). It is built inside a throwaway module that requires exactly that
# version: the same build as `go install package@version`, which some module
# proxies refuse because it also lists the module's versions to look for a
# deprecation notice.
go_install_pinned() {
  local name=$1 module=$2 version=$3 package=$4
  local stamp="$TOOLS_BIN/.$name.version"
  if [[ -x "$TOOLS_BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$package@$version" ]]; then
    return
  fi
  echo "-- go install $package@$version"
  mkdir -p "$TOOLS_BIN"
  local scratch
  scratch=$(mktemp -d)
  printf 'module bosun.tools\n\ngo %s\n\nrequire %s %s\n' \
    "$(go env GOVERSION | sed 's/^go//')" "$module" "$version" >"$scratch/go.mod"
  (cd "$scratch" && GOFLAGS=-mod=mod GOBIN="$TOOLS_BIN" go install "$package")
  rm -rf "$scratch"
  echo "$package@$version" >"$stamp"
}

ensure_go_plugins() {
  go_install_pinned protoc-gen-go google.golang.org/protobuf "$PROTOC_GEN_GO_VERSION" \
    google.golang.org/protobuf/cmd/protoc-gen-go
  go_install_pinned protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" \
    google.golang.org/grpc/cmd/protoc-gen-go-grpc
}

ensure_grpc_cli_tools() {
  go_install_pinned grpcurl github.com/fullstorydev/grpcurl "$GRPCURL_VERSION" \
    github.com/fullstorydev/grpcurl/cmd/grpcurl
  go_install_pinned grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe "$GRPC_HEALTH_PROBE_VERSION" \
    github.com/grpc-ecosystem/grpc-health-probe
}

ensure_ghz() {
  go_install_pinned ghz github.com/bojand/ghz "$GHZ_VERSION" github.com/bojand/ghz/cmd/ghz
}

# clients/typescript/node_modules from package-lock.json (npm ci), once per lock.
ensure_node_modules() {
  local dir="$REPO_ROOT/clients/typescript"
  local stamp="$dir/node_modules/.lock.sha256"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  echo "-- npm ci in clients/typescript"
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$want" >"$stamp"
}

# dashboard/node_modules from its package-lock.json (npm ci), once per lock:
# esbuild and TypeScript to build the front end, playwright-core to drive the
# browser in its tests (never a browser download: the tests use Debian's).
ensure_dashboard_node_modules() {
  local dir="$REPO_ROOT/dashboard"
  local stamp="$dir/node_modules/.lock.sha256"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  echo "-- npm ci in dashboard"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$want" >"$stamp"
}

# Debian's Chromium for the dashboard's browser tests, installed from the
# distribution's packages when missing (CI runs as root).
CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
ensure_chromium() {
  if [[ -x "$CHROMIUM_PATH" ]]; then
    return
  fi
  echo "-- apt-get install chromium"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

# ccusage from npm, pinned, into .tools/ccusage (its binary:
# .tools/ccusage/node_modules/.bin/ccusage). Called by tests/usage_ccusage/.
ensure_ccusage() {
  local dir="$TOOLS_DIR/ccusage"
  local stamp="$dir/.version"
  if [[ -x "$dir/node_modules/.bin/ccusage" && -f "$stamp" && "$(cat "$stamp")" == "$CCUSAGE_VERSION" ]]; then
    return
  fi
  echo "-- npm install ccusage@${CCUSAGE_VERSION} into .tools/ccusage" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save "ccusage@${CCUSAGE_VERSION}" >&2
  echo "$CCUSAGE_VERSION" >"$stamp"
}

# GitHub's published webhook examples (npm @octokit/webhooks-examples),
# pinned, into .tools/webhooks-examples; tests/webhook_examples.rs replays
# them (TEST_BOSUN_WEBHOOK_EXAMPLES names the file).
ensure_webhook_examples() {
  local dir="$TOOLS_DIR/webhooks-examples"
  local stamp="$dir/.version"
  export TEST_BOSUN_WEBHOOK_EXAMPLES="$dir/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
  if [[ -f "$TEST_BOSUN_WEBHOOK_EXAMPLES" && -f "$stamp" && "$(cat "$stamp")" == "$WEBHOOK_EXAMPLES_VERSION" ]]; then
    return
  fi
  echo "-- npm install @octokit/webhooks-examples@${WEBHOOK_EXAMPLES_VERSION}"
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "@octokit/webhooks-examples@${WEBHOOK_EXAMPLES_VERSION}"
  echo "$WEBHOOK_EXAMPLES_VERSION" >"$stamp"
}
