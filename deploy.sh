#!/usr/bin/env bash
# Installs casa-sched into the current kubectl context (or --context/--kubeconfig).
#
#   ./deploy.sh                      install or upgrade (idempotent: server-side apply)
#   ./deploy.sh --dry-run            validate everything against the API server, change nothing
#   ./deploy.sh --uninstall          remove what ./deploy.sh installed (the plan ConfigMap too)
#
# Options:
#   --context NAME        kubectl context to use (default: the current one)
#   --kubeconfig PATH     kubeconfig to use (default: kubectl's own default / $KUBECONFIG)
#   --image REF           casa-sched image (default ghcr.io/casa-sched/casa-sched:0.1.0)
#   --second-scheduler    also run a second kube-scheduler, schedulerName casa-scheduler
#   --knative             also grant the autoscaler Knative's objects (autoscaler/rbac-knative.yaml)
#   --scheduler-image REF kube-scheduler image for it (default: the server's own version)
#   --no-wait             do not wait for the extender and autoscaler Deployments to become available
#   --timeout DURATION    how long to wait (default 180s)
#   -h, --help            this text
#
# Needs kubectl and a cluster running Kubernetes >= 1.33 (pods/resize, in-place resize beta).
# The default kube-scheduler is not reconfigured by this script (it runs on the control plane,
# outside the API); it prints the scheduler configuration to install there.
set -euo pipefail

MIN_MINOR=33
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifests="$here/manifests"
image=""
scheduler_image=""
second_scheduler=0
knative=0
dry_run=0
uninstall=0
wait_ready=1
timeout=180s
kubectl_args=()

die() { echo "deploy.sh: error: $*" >&2; exit 1; }
say() { echo "deploy.sh: $*" >&2; }
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --uninstall) uninstall=1 ;;
    --second-scheduler) second_scheduler=1 ;;
    --knative) knative=1 ;;
    --no-wait) wait_ready=0 ;;
    --context) [ $# -ge 2 ] || die "--context needs a value"; kubectl_args+=(--context "$2"); shift ;;
    --context=*) kubectl_args+=(--context "${1#*=}") ;;
    --kubeconfig) [ $# -ge 2 ] || die "--kubeconfig needs a value"; kubectl_args+=(--kubeconfig "$2"); shift ;;
    --kubeconfig=*) kubectl_args+=(--kubeconfig "${1#*=}") ;;
    --image) [ $# -ge 2 ] || die "--image needs a value"; image=$2; shift ;;
    --image=*) image=${1#*=} ;;
    --scheduler-image) [ $# -ge 2 ] || die "--scheduler-image needs a value"; scheduler_image=$2; shift ;;
    --scheduler-image=*) scheduler_image=${1#*=} ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs a value"; timeout=$2; shift ;;
    --timeout=*) timeout=${1#*=} ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# -- prerequisites -----------------------------------------------------------------------------
command -v kubectl >/dev/null 2>&1 || die "kubectl not found in PATH; install it (https://kubernetes.io/docs/tasks/tools/)"
[ -f "$manifests/kustomization.yaml" ] || die "manifests not found at $manifests"
kc() { kubectl "${kubectl_args[@]}" "$@"; }

context=$(kc config current-context 2>/dev/null || true)
[ ${#kubectl_args[@]} -gt 0 ] || [ -n "$context" ] || die "no current kubectl context; pass --context or --kubeconfig"
if ! version_json=$(kc version -o json 2>&1); then
  die "cannot reach the cluster of context '${context:-?}':"$'\n'"$version_json"
fi
server_version=$(printf '%s' "$version_json" | sed -n '/"serverVersion"/,/}/s/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1)
[ -n "$server_version" ] || die "kubectl returned no server version for context '${context:-?}'"
if [[ $server_version =~ ^v([0-9]+)\.([0-9]+) ]]; then
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
else
  die "cannot parse server version '$server_version'"
fi
if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt $MIN_MINOR ]; }; then
  die "server is $server_version; casa-sched needs Kubernetes >= 1.$MIN_MINOR (pods/resize, in-place resize)"
fi
client_version=$(printf '%s' "$version_json" | sed -n '/"clientVersion"/,/}/s/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1)
if [[ $client_version =~ ^v1\.([0-9]+) ]] && [ $(( minor - BASH_REMATCH[1] )) -gt 1 ]; then
  say "warning: kubectl $client_version is more than one minor version older than the server ($server_version)"
fi
say "context '${context:-?}', server $server_version"

# -- what to apply -----------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/casa-deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT
[ -n "$scheduler_image" ] || scheduler_image="registry.k8s.io/kube-scheduler:${server_version%%[-+]*}"
# Throw-away overlays carry the image choices (kubectl's built-in kustomize, no extra tool).
render() {  # render DIR OUT: kustomize DIR with the chosen images
  local dir=$1 out=$2 overlay
  overlay=$(mktemp -d "$work/overlay.XXXXXX")
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    # kustomize wants a relative path to a base.
    echo "  - $(realpath --relative-to="$overlay" "$dir")"
    echo "images:"
    if [ -n "$image" ]; then
      echo "  - name: ghcr.io/casa-sched/casa-sched"
      if [[ $image == *@* ]]; then            # repo@sha256:...
        echo "    newName: ${image%%@*}"
        echo "    digest: ${image#*@}"
      elif [[ ${image##*/} == *:* ]]; then    # repo[:port]/name:tag
        echo "    newName: ${image%:*}"
        echo "    newTag: ${image##*:}"
      else                                    # no tag: keep 0.1.0
        echo "    newName: $image"
      fi
    fi
    echo "  - name: registry.k8s.io/kube-scheduler"
    echo "    newName: ${scheduler_image%:*}"
    echo "    newTag: ${scheduler_image##*:}"
  } > "$overlay/kustomization.yaml"
  kc kustomize "$overlay" > "$out" 2> "$work/kustomize.err" \
    || die "kustomize $dir failed:"$'\n'"$(cat "$work/kustomize.err")"
}
render "$manifests" "$work/rendered.yaml"
render "$manifests/second-scheduler" "$work/second-scheduler.yaml"
if [ $second_scheduler -eq 1 ]; then
  { echo "---"; cat "$work/second-scheduler.yaml"; } >> "$work/rendered.yaml"
fi
if [ $knative -eq 1 ] || [ $uninstall -eq 1 ]; then
  { echo "---"; cat "$manifests/autoscaler/rbac-knative.yaml"; } >> "$work/rendered.yaml"
fi

# -- uninstall ---------------------------------------------------------------------------------
if [ $uninstall -eq 1 ]; then
  flags=(--ignore-not-found --wait=false)
  [ $dry_run -eq 1 ] && flags+=(--dry-run=server)
  # Everything either variant installs (absent objects are fine), the add-on first. The plan
  # ConfigMap the autoscaler wrote goes with the namespace.
  kc delete "${flags[@]}" -f "$work/second-scheduler.yaml" >&2 || die "kubectl delete failed"
  kc delete "${flags[@]}" -f "$work/rendered.yaml" >&2 || die "kubectl delete failed"
  say "uninstalled$([ $dry_run -eq 1 ] && echo ' (dry run: nothing changed)')"
  exit 0
fi

# -- install / upgrade -------------------------------------------------------------------------
apply=(apply --server-side --field-manager=casa-sched-deploy --force-conflicts -f "$work/rendered.yaml")
if [ $dry_run -eq 1 ]; then
  target="$work/rendered.yaml"
  if ! kc get namespace casa-system >/dev/null 2>&1; then
    # A server-side dry run cannot create the namespace, so objects inside it would fail with
    # "namespace not found"; validate those in namespace default instead and say so.
    say "namespace casa-system does not exist yet: validating its objects in namespace 'default'"
    sed 's/^\(\s*namespace:\) casa-system$/\1 default/' "$work/rendered.yaml" > "$work/dry-run.yaml"
    target="$work/dry-run.yaml"
  fi
  out=$(kc apply --server-side --field-manager=casa-sched-deploy --force-conflicts --dry-run=server \
          -f "$target" 2>&1) || die "server-side dry run failed:"$'\n'"$out"
  printf '%s\n' "$out"
  say "dry run OK: the API server accepted every object; nothing was changed"
  exit 0
fi

kc "${apply[@]}" >&2 || die "kubectl apply failed"
if [ $wait_ready -eq 1 ]; then
  say "waiting up to $timeout for deployment/casa-extender"
  kc -n casa-system rollout status deployment/casa-extender --timeout="$timeout" >&2 \
    || die "casa-extender did not become available within $timeout (kubectl -n casa-system describe deploy casa-extender)"
  say "waiting up to $timeout for deployment/casa-autoscaler"
  kc -n casa-system rollout status deployment/casa-autoscaler --timeout="$timeout" >&2 \
    || die "casa-autoscaler did not become available within $timeout (kubectl -n casa-system describe deploy casa-autoscaler)"
fi
cluster_ip=$(kc -n casa-system get service casa-extender -o jsonpath='{.spec.clusterIP}' 2>/dev/null || true)
say "installed. To attach the extender to the default scheduler, start kube-scheduler with"
say "  --config set to manifests/scheduler/kube-scheduler-config.yaml (see the comments there);"
say "  if the control-plane hosts cannot resolve cluster DNS, use urlPrefix http://${cluster_ip:-<ClusterIP>}:8888"
[ $second_scheduler -eq 1 ] && say "second scheduler: set spec.schedulerName: casa-scheduler on function pods"
exit 0
