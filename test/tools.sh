#!/bin/bash
# tools.sh: install the Go-built tools the test suite needs into
# $(go env GOPATH)/bin when they are missing (idempotent).
#
#   helm  - used by test/chart (helm lint --strict, helm template).
#
# helm is not packaged by Debian; `go install` builds it from the Go module
# proxy (about 3 minutes and 1.1 GB RSS with a cold cache, instant after).
# Override the version with HELM_VERSION=vX.Y.Z.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
HELM_VERSION=${HELM_VERSION:-v3.22.0}
GOBIN_DIR=$(go env GOBIN)
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH)/bin"

have_helm() {
  [ -x "$GOBIN_DIR/helm" ] || return 1
  # `go install` leaves no ldflags, so helm reports only major.minor.
  local want=${HELM_VERSION%.*}
  "$GOBIN_DIR/helm" version --short 2>/dev/null | grep -q "^${want}"
}

if have_helm; then
  echo "tools: helm $("$GOBIN_DIR/helm" version --short) in $GOBIN_DIR"
else
  echo "tools: installing helm $HELM_VERSION into $GOBIN_DIR (go install, ~3 min cold)"
  T0=$(date +%s)
  # Built outside the repository so the project's go.mod is untouched.
  (cd / && CGO_ENABLED=0 GOBIN="$GOBIN_DIR" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
  echo "tools: helm installed in $(( $(date +%s) - T0 ))s: $("$GOBIN_DIR/helm" version --short)"
fi
