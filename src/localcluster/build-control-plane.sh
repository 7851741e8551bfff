#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and helm from the
# Go module proxy into a cache outside the repo, keyed by version. Never rebuilds
# what is cached. Prints the bin directory on stdout's last line.
set -euo pipefail

K8S_VERSION="${KEDGE_K8S_VERSION:-v1.36.3}"
HELM_VERSION="${KEDGE_HELM_VERSION:-v3.21.4}"
CACHE_ROOT="${KEDGE_CACHE_DIR:-$HOME/.cache/kedge}"
BIN_DIR="$CACHE_ROOT/k8s-$K8S_VERSION/bin"
HELM_DIR="$CACHE_ROOT/helm-$HELM_VERSION/bin"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { echo "[control-plane] $*" >&2; }

need_go() {
  command -v go >/dev/null || {
    echo "Go is required to build $1 (install Go from https://go.dev/dl/)" >&2
    exit 1
  }
}

build_k8s() {
  local work
  work="$(mktemp -d)"
  cp "$HERE/k8sbin/go.mod" "$HERE/k8sbin/tools.go" "$work/"
  [ -f "$HERE/k8sbin/go.sum" ] && cp "$HERE/k8sbin/go.sum" "$work/"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldf="-s -w"
  for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean; do
    ldf="$ldf -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
  local started=$SECONDS
  log "building Kubernetes $K8S_VERSION (about ten minutes on two cores)"
  (cd "$work" && go mod tidy >&2 && mkdir -p "$BIN_DIR.tmp" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldf" -o "$BIN_DIR.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl >&2)
  rm -rf "$BIN_DIR" && mv "$BIN_DIR.tmp" "$BIN_DIR"
  rm -rf "$work"
  log "built Kubernetes $K8S_VERSION in $((SECONDS - started)) s"
}

build_helm() {
  local started=$SECONDS
  log "building helm $HELM_VERSION (about two minutes)"
  mkdir -p "$HELM_DIR"
  local ldf="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  GOBIN="$HELM_DIR" CGO_ENABLED=0 go install -trimpath -ldflags "$ldf" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  log "built helm $HELM_VERSION in $((SECONDS - started)) s"
}

mkdir -p "$CACHE_ROOT"
# One build at a time: concurrent callers wait for the first and then reuse its result.
exec 9>"$CACHE_ROOT/build.lock"
flock 9
if [ -x "$BIN_DIR/kube-apiserver" ] && [ -x "$BIN_DIR/kube-controller-manager" ] && [ -x "$BIN_DIR/kube-scheduler" ]; then
  log "Kubernetes $K8S_VERSION cached in $BIN_DIR"
else
  need_go "Kubernetes $K8S_VERSION"
  build_k8s
fi
if [ -x "$HELM_DIR/helm" ]; then
  log "helm $HELM_VERSION cached in $HELM_DIR"
else
  need_go "helm $HELM_VERSION"
  build_helm
fi
ln -sf "$HELM_DIR/helm" "$BIN_DIR/helm"
echo "$BIN_DIR"
