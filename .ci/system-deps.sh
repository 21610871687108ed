#!/usr/bin/env bash
# Installs the Debian packages the test suite uses for real components, when they are missing.
#   prometheus  real Prometheus server for the metrics/dashboard tests
#   stress-ng   the stress backend casa-stress prefers when installed
#   openssl     keys and certificates for the local kube-apiserver
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v stress-ng >/dev/null 2>&1 || need+=(stress-ng)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
