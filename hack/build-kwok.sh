#!/usr/bin/env bash
# Builds KWOK (sigs.k8s.io/kwok: fake kubelets that make Nodes heartbeat Ready and bound Pods
# Running) from the Go module proxy and caches the binary by version outside the repository.
#
#   hack/build-kwok.sh            build if the cache is cold, then print the kwok binary's path
#   hack/build-kwok.sh --print    print the path that would be used (no build)
#   hack/build-kwok.sh --force    rebuild even if the cache is warm
#
# Environment:
#   CASA_KWOK_BIN       path of an existing kwok executable: used as is (no build)
#   KUBEBUILDER_ASSETS  if it holds an executable `kwok`, that one is used (no build)
#   CASA_KWOK_VERSION   KWOK release (default v0.8.0; its go.mod needs Go >= 1.26)
#   CASA_KWOK_CACHE     cache root (default $HOME/.cache/casa-sched/kwok); the binary lands in
#                       $CASA_KWOK_CACHE/<version>/bin/kwok
#
# sigs.k8s.io/kwok has no replace directives, so a plain `go install pkg@version` builds it.
set -euo pipefail

KWOK_VERSION=${CASA_KWOK_VERSION:-v0.8.0}
CACHE_ROOT=${CASA_KWOK_CACHE:-$HOME/.cache/casa-sched/kwok}
BIN_DIR="$CACHE_ROOT/$KWOK_VERSION/bin"

mode=build
case "${1:-}" in
  --print) mode=print ;;
  --force) mode=force ;;
  "") ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "build-kwok: unknown argument $1 (expected --print, --force or nothing)" >&2; exit 2 ;;
esac

if [ -n "${CASA_KWOK_BIN:-}" ]; then
  if [ -x "$CASA_KWOK_BIN" ] && [ -f "$CASA_KWOK_BIN" ]; then
    echo "$CASA_KWOK_BIN"
    exit 0
  fi
  echo "build-kwok: CASA_KWOK_BIN=$CASA_KWOK_BIN is not an executable file" >&2
  exit 2
fi
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kwok" ]; then
  echo "$KUBEBUILDER_ASSETS/kwok"
  exit 0
fi

complete() { [ -x "$BIN_DIR/kwok" ] && [ -f "$BIN_DIR/.complete" ]; }

if [ "$mode" = print ]; then echo "$BIN_DIR/kwok"; exit 0; fi
if [ "$mode" = build ] && complete; then echo "$BIN_DIR/kwok"; exit 0; fi

[[ $KWOK_VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || {
  echo "build-kwok: CASA_KWOK_VERSION must look like v0.8.0, got $KWOK_VERSION" >&2; exit 2; }
command -v go >/dev/null 2>&1 || { echo "build-kwok: go not found (KWOK $KWOK_VERSION needs Go >= 1.26)" >&2; exit 1; }

# One build per version at a time: wait for a concurrent one, then reuse what it built.
mkdir -p "$CACHE_ROOT"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/$KWOK_VERSION.lock"
  if ! flock -n 9; then
    echo "build-kwok: another build of $KWOK_VERSION is running; waiting for it" >&2
    flock 9
  fi
  if [ "$mode" = build ] && complete; then echo "$BIN_DIR/kwok"; exit 0; fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/casa-kwok-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-kwok: go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
mkdir -p "$work/bin"
if ! GOBIN="$work/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    2>"$work/build.log"; then
  tail -40 "$work/build.log" >&2
  exit 1
fi
[ -x "$work/bin/kwok" ] || { echo "build-kwok: go install finished but $work/bin/kwok is missing" >&2; exit 1; }
{
  echo "kwok=$KWOK_VERSION"
  echo "go=$(go env GOVERSION)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "seconds=$(( $(date +%s) - start ))"
} > "$work/bin/.complete"
mkdir -p "$(dirname "$BIN_DIR")"
rm -rf "$BIN_DIR.tmp"
mv "$work/bin" "$BIN_DIR.tmp"
rm -rf "$BIN_DIR"
mv "$BIN_DIR.tmp" "$BIN_DIR"
echo "build-kwok: done: kwok $KWOK_VERSION in $BIN_DIR ($(( $(date +%s) - start ))s)" >&2
echo "$BIN_DIR/kwok"
