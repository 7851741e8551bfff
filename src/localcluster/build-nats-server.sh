#!/usr/bin/env bash
# Builds nats-server from the Go module proxy into a cache outside the repo, keyed by version.
# Never rebuilds what is cached. Prints the binary's path on stdout's last line.
set -euo pipefail

NATS_VERSION="${KEDGE_NATS_VERSION:-v2.15.2}"
CACHE_ROOT="${KEDGE_CACHE_DIR:-$HOME/.cache/kedge}"
BIN_DIR="$CACHE_ROOT/nats-server-$NATS_VERSION/bin"

log() { echo "[nats-server] $*" >&2; }

mkdir -p "$CACHE_ROOT"
# Its own lock, not the control plane's: a one-minute NATS build need not queue behind Kubernetes.
exec 9>"$CACHE_ROOT/nats-build.lock"
flock 9
if [ -x "$BIN_DIR/nats-server" ]; then
  log "nats-server $NATS_VERSION cached in $BIN_DIR"
else
  command -v go >/dev/null || {
    echo "Go is required to build nats-server $NATS_VERSION (install Go from https://go.dev/dl/)" >&2
    exit 1
  }
  log "building nats-server $NATS_VERSION (about a minute)"
  rm -rf "$BIN_DIR.tmp" && mkdir -p "$BIN_DIR.tmp"
  GOBIN="$BIN_DIR.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
    "github.com/nats-io/nats-server/v2@$NATS_VERSION" >&2
  rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
  log "built nats-server $NATS_VERSION in ${SECONDS} s"
fi
echo "$BIN_DIR/nats-server"
