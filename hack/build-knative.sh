#!/usr/bin/env bash
# Builds Knative Serving's controller and autoscaler from the Go module proxy and caches them
# by version outside the repository, with the release's CRDs and ConfigMaps beside them.
#
#   hack/build-knative.sh            build if the cache is cold, then print the cache directory
#   hack/build-knative.sh --print    print the directory that would be used (no build)
#   hack/build-knative.sh --force    rebuild even if the cache is warm
#   hack/build-knative.sh --config-only  only fetch the release's CRDs and ConfigMaps into
#                                    <cache>/<version>/config (no build; for releases whose
#                                    dependencies the module proxy does not serve)
#
# Environment:
#   CASA_KNATIVE_BIN      a directory already holding `controller` and `autoscaler` (no build)
#   CASA_KNATIVE_VERSION  module version of knative.dev/serving (default v0.42.2: release 1.15.2, the newest whose
#                         dependencies the module proxy serves here; v0.51.0's pinned
#                         knative.dev/pkg is refused). The module is
#                         tagged v0.<27+minor>.<patch>: v0.51.0 is release 1.24, v0.48.0 1.21,
#                         v0.42.2 1.15.2 (same trees as the knative-v1.x git tags).
#   CASA_KNATIVE_CACHE    cache root (default $HOME/.cache/casa-sched/knative); the layout is
#                         $CASA_KNATIVE_CACHE/<version>/{bin/controller,bin/autoscaler,config/}
#
# `config/` is the module's config/core/300-resources (CRDs) and config/core/configmaps, so a
# test installs exactly the CRDs of the release it runs.
set -euo pipefail

VERSION=${CASA_KNATIVE_VERSION:-v0.42.2}
CACHE_ROOT=${CASA_KNATIVE_CACHE:-$HOME/.cache/casa-sched/knative}
OUT="$CACHE_ROOT/$VERSION"
BINARIES=(controller autoscaler)

mode=build
case "${1:-}" in
  --print) mode=print ;;
  --force) mode=force ;;
  --config-only) mode=config ;;
  "") ;;
  -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
  *) echo "build-knative: unknown argument $1" >&2; exit 2 ;;
esac

have_all() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ -n "${CASA_KNATIVE_BIN:-}" ]; then
  if have_all "$CASA_KNATIVE_BIN"; then echo "$CASA_KNATIVE_BIN"; exit 0; fi
  echo "build-knative: CASA_KNATIVE_BIN=$CASA_KNATIVE_BIN lacks one of ${BINARIES[*]}; using the cache" >&2
fi
if [ "$mode" = print ]; then echo "$OUT"; exit 0; fi
if [ "$mode" = build ] && have_all "$OUT/bin" && [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi

start=$(date +%s)
log() { echo "build-knative: [$(( $(date +%s) - start ))s] $*" >&2; }

# The release's CRDs and ConfigMaps: serving's config/core/{300-resources,configmaps}, plus the
# networking.internal (Certificate, Ingress, ServerlessService, ClusterDomainClaim CRDs and
# config-network) and caching.internal (Image CRD) ones at the versions serving's go.mod pins.
# With "optional" (--config-only), a dependency module the proxy refuses is skipped with a note:
# the serving CRDs alone are what the adapter's own tests need.
copy_config() {  # <serving module dir> <destination> [optional]
  local dir=$1 dest=$2 need=${3:-required} m v mdir
  mkdir -p "$dest"
  cp "$dir"/config/core/300-resources/*.yaml "$dir"/config/core/configmaps/*.yaml "$dest/"
  for m in knative.dev/networking knative.dev/caching; do
    v=$(awk -v m="$m" '$1==m {print $2; exit}' "$dir/go.mod")
    [ -n "$v" ] || { echo "build-knative: $dir/go.mod does not require $m" >&2; exit 1; }
    mdir=$(go mod download -json "$m@$v" 2>/dev/null | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p' || true)
    if [ ! -d "$mdir" ]; then
      [ "$need" = optional ] && { echo "build-knative: $m@$v not served; its CRDs are left out" >&2; continue; }
      echo "build-knative: could not download $m@$v" >&2; exit 1
    fi
    for f in "$mdir"/config/*.yaml; do cp "$f" "$dest/${m##*/}-$(basename "$f")"; done
  done
  chmod -R u+w "$dest"
}
[[ $VERSION =~ ^v0\.[0-9]+\.[0-9]+$ ]] || {
  echo "build-knative: CASA_KNATIVE_VERSION must look like v0.51.0, got $VERSION" >&2; exit 2; }
command -v go >/dev/null 2>&1 || { echo "build-knative: go not found" >&2; exit 1; }

if [ "$mode" = config ]; then
  [ -f "$OUT/config/.complete" ] && { echo "$OUT"; exit 0; }
  dir=$(go mod download -json "knative.dev/serving@$VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "build-knative: could not download knative.dev/serving@$VERSION" >&2; exit 1; }
  rm -rf "$OUT/config"
  copy_config "$dir" "$OUT/config" optional
  touch "$OUT/config/.complete"
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE_ROOT"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/$VERSION.lock"
  if ! flock -n 9; then
    echo "build-knative: another build of $VERSION is running; waiting for it" >&2
    flock 9
  fi
  if [ "$mode" = build ] && have_all "$OUT/bin" && [ -f "$OUT/.complete" ]; then echo "$OUT"; exit 0; fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0
tmp="$OUT.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/config"
log "downloading knative.dev/serving@$VERSION"
dir=$(go mod download -json "knative.dev/serving@$VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "build-knative: could not download knative.dev/serving@$VERSION" >&2; exit 1; }
copy_config "$dir" "$tmp/config"
touch "$tmp/config/.complete"

# `go install pkg@version` refuses a module whose go.mod has replace directives (serving pins
# gorilla/websocket that way), so build inside a throw-away module that requires serving at
# $VERSION, inherits its go line and replace directives, and takes its dependency versions.
work=$(mktemp -d "${TMPDIR:-/tmp}/casa-knative-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$dir/go.mod" "$work/go.mod"
chmod u+w "$work/go.mod"
(
  cd "$work"
  go mod edit -module=example.invalid/casa-knativebin -require="knative.dev/serving@$VERSION"
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "knative.dev/serving/cmd/autoscaler"
	_ "knative.dev/serving/cmd/controller"
)
GO
  cp "$dir/go.sum" go.sum && chmod u+w go.sum
  log "go mod tidy (serving@$VERSION's own dependency versions)"
  GOFLAGS=-mod=mod go mod tidy -e >"$work/tidy.log" 2>&1 || { cat "$work/tidy.log" >&2; exit 1; }
  got=$(go list -m -f '{{.Version}}' knative.dev/serving)
  [ "$got" = "$VERSION" ] || { echo "build-knative: resolved knative.dev/serving $got, wanted $VERSION" >&2; exit 1; }
  log "go build knative.dev/serving/cmd/{controller,autoscaler} (CGO_ENABLED=0)"
  GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$tmp/bin/" \
    knative.dev/serving/cmd/controller knative.dev/serving/cmd/autoscaler
)
have_all "$tmp/bin" || { echo "build-knative: build finished but binaries are missing: $(ls "$tmp/bin")" >&2; exit 1; }

{
  echo "serving=$VERSION"
  echo "go=$(go env GOVERSION)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "seconds=$(( $(date +%s) - start ))"
} > "$tmp/.complete"
rm -rf "$OUT"
mv "$tmp" "$OUT"
log "done: knative.dev/serving $VERSION in $OUT"
echo "$OUT"
