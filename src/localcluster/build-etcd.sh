#!/usr/bin/env bash
# Builds etcd from the Go module proxy into a cache outside the repo, keyed by version, so the local
# control plane never depends on a distribution's etcd. Never rebuilds what is cached. Prints the
# binary's path on stdout's last line.
set -euo pipefail

ETCD_VERSION="${KEDGE_ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${KEDGE_CACHE_DIR:-$HOME/.cache/kedge}"
BIN_DIR="$CACHE_ROOT/etcd-$ETCD_VERSION/bin"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { echo "[etcd] $*" >&2; }

build_etcd() {
  local work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  cp "$HERE/etcdbin/go.mod" "$HERE/etcdbin/go.sum" "$HERE/etcdbin/main.go" "$work/"
  log "building etcd $ETCD_VERSION (about a minute)"
  (cd "$work" &&
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
    go mod tidy >&2 &&
    rm -rf "$BIN_DIR.tmp" && mkdir -p "$BIN_DIR.tmp" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR.tmp/etcd" . >&2)
  rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
  log "built etcd $ETCD_VERSION in ${SECONDS} s"
}

mkdir -p "$CACHE_ROOT"
# Its own lock, like nats-server's: a short etcd build need not queue behind Kubernetes.
exec 9>"$CACHE_ROOT/etcd-build.lock"
flock 9
if [ -x "$BIN_DIR/etcd" ]; then
  log "etcd $ETCD_VERSION cached in $BIN_DIR"
else
  command -v go >/dev/null || {
    echo "Go is required to build etcd $ETCD_VERSION (install Go from https://go.dev/dl/)" >&2
    exit 1
  }
  build_etcd
fi
echo "$BIN_DIR/etcd"
