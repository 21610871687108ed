#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-scheduler,
# kube-controller-manager, kubectl) and etcd from the Go module proxy, and caches the
# binaries by version outside the repository.
#
#   hack/build-k8s.sh            build if the cache is cold, then print the bin directory
#   hack/build-k8s.sh --print    print the bin directory that would be used (no build)
#   hack/build-k8s.sh --force    rebuild even if the cache is warm
#
# Environment:
#   KUBEBUILDER_ASSETS  if set and it holds all five binaries, it is used as is (no build)
#   CASA_K8S_VERSION    Kubernetes release (default v1.35.4: first minor where in-place pod
#                       resize, pods/resize, is GA; 1.34 would need the beta gate)
#   CASA_ETCD_VERSION   etcd release (default: the go.etcd.io/etcd/server/v3 version that the
#                       Kubernetes release's own go.mod pins, so one module graph builds all)
#   CASA_K8S_CACHE      cache root (default $HOME/.cache/casa-sched/k8s); binaries land in
#                       $CASA_K8S_CACHE/<k8s version>/bin
#
# Why a wrapper module: k8s.io/kubernetes requires its ~30 staging modules at v0.0.0 and
# replaces them with ./staging paths, so `go install` refuses it. A throw-away module that
# requires it and replaces each staging module with its tagged v0.<minor>.<patch> builds fine.
set -euo pipefail

K8S_VERSION=${CASA_K8S_VERSION:-v1.35.4}
CACHE_ROOT=${CASA_K8S_CACHE:-$HOME/.cache/casa-sched/k8s}
BIN_DIR="$CACHE_ROOT/$K8S_VERSION/bin"
BINARIES=(kube-apiserver kube-scheduler kube-controller-manager kubectl etcd)

mode=build
case "${1:-}" in
  --print) mode=print ;;
  --force) mode=force ;;
  "") ;;
  -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
  *) echo "build-k8s: unknown argument $1" >&2; exit 2 ;;
esac

have_all() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if have_all "$KUBEBUILDER_ASSETS"; then
    echo "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  echo "build-k8s: KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks one of ${BINARIES[*]};" \
       "using the cache instead" >&2
fi

if [ "$mode" = print ]; then echo "$BIN_DIR"; exit 0; fi
if [ "$mode" = build ] && have_all "$BIN_DIR" && [ -f "$BIN_DIR/.complete" ]; then
  echo "$BIN_DIR"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "build-k8s: go not found (need Go >= 1.25)" >&2; exit 1; }

# One build per version at a time (two `make test` runs on one machine): wait for the other,
# then reuse what it built.
mkdir -p "$CACHE_ROOT"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/$K8S_VERSION.lock"
  if ! flock -n 9; then
    echo "build-k8s: another build of $K8S_VERSION is running; waiting for it" >&2
    flock 9
  fi
  if [ "$mode" = build ] && have_all "$BIN_DIR" && [ -f "$BIN_DIR/.complete" ]; then
    echo "$BIN_DIR"
    exit 0
  fi
fi

[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || {
  echo "build-k8s: CASA_K8S_VERSION must look like v1.35.4, got $K8S_VERSION" >&2; exit 2; }
MINOR=${BASH_REMATCH[1]}
STAGING_VERSION="v0.${MINOR}.${BASH_REMATCH[2]}"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/casa-k8s-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

log() { echo "build-k8s: [$(( $(date +%s) - start ))s] $*" >&2; }

log "resolving k8s.io/kubernetes@$K8S_VERSION"
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod" ] || { echo "build-k8s: could not download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }

go mod init example.invalid/casa-k8sbin >/dev/null 2>&1
go_line=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -1)
go mod edit -go="$go_line"
# Keep the release's godebug defaults (they affect runtime behaviour of the binaries).
# go mod edit cannot add godebug lines before Go 1.23's syntax; append them verbatim.
grep -E '^godebug ' "$gomod" | sort -u >> go.mod || true

# Every staging module pinned at v0.0.0 -> the tagged v0.<minor>.<patch>.
mapfile -t staging < <(awk '/^\t[^ ]+ v0\.0\.0( |$)/ {print $1}' "$gomod" | sort -u)
[ ${#staging[@]} -gt 0 ] || { echo "build-k8s: found no v0.0.0 staging modules in $gomod" >&2; exit 1; }
edits=()
for m in "${staging[@]}"; do edits+=("-replace=$m=$m@$STAGING_VERSION"); done
go mod edit "${edits[@]}"
log "${#staging[@]} staging modules replaced with $STAGING_VERSION"

ETCD_VERSION=${CASA_ETCD_VERSION:-$(awk '$1=="go.etcd.io/etcd/server/v3" {print $2; exit}' "$gomod")}
[ -n "$ETCD_VERSION" ] || { echo "build-k8s: cannot tell the etcd version; set CASA_ETCD_VERSION" >&2; exit 1; }

cat > tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
log "go get k8s.io/kubernetes@$K8S_VERSION go.etcd.io/etcd/server/v3@$ETCD_VERSION"
go get "k8s.io/kubernetes@$K8S_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>"$work/get.log" \
  || { cat "$work/get.log" >&2; exit 1; }
go mod tidy -e >/dev/null 2>"$work/tidy.log" || { cat "$work/tidy.log" >&2; exit 1; }
got_k8s=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
got_etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
[ "$got_k8s" = "$K8S_VERSION" ] || { echo "build-k8s: resolved k8s.io/kubernetes $got_k8s, wanted $K8S_VERSION" >&2; exit 1; }

build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
# etcd's version package is a constant; nothing to stamp.

tmp_bin="$work/bin"
mkdir -p "$tmp_bin"
log "go build (CGO_ENABLED=0, -p $(nproc)) -> $tmp_bin"
go build -trimpath -ldflags "$ldflags" -o "$tmp_bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl \
  go.etcd.io/etcd/server/v3
# The etcd main package is the module root go.etcd.io/etcd/server/v3; go build names the
# binary after the last path element that is not a major-version suffix ("server").
for n in server v3; do [ -x "$tmp_bin/$n" ] && mv "$tmp_bin/$n" "$tmp_bin/etcd"; done
have_all "$tmp_bin" || { echo "build-k8s: build finished but binaries are missing: $(ls "$tmp_bin")" >&2; exit 1; }

{
  echo "kubernetes=$got_k8s"
  echo "etcd=$got_etcd"
  echo "go=$(go env GOVERSION)"
  echo "built=$build_date"
  echo "seconds=$(( $(date +%s) - start ))"
} > "$tmp_bin/.complete"
cp go.mod "$tmp_bin/.wrapper-go.mod"
mkdir -p "$(dirname "$BIN_DIR")"
rm -rf "$BIN_DIR.tmp"
mv "$tmp_bin" "$BIN_DIR.tmp"
rm -rf "$BIN_DIR"
mv "$BIN_DIR.tmp" "$BIN_DIR"
log "done: kubernetes $got_k8s, etcd $got_etcd in $BIN_DIR"
echo "$BIN_DIR"
