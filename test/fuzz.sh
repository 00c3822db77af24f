#!/usr/bin/env bash
# Runs every Fuzz target in the module briefly (FUZZTIME each, default 5s).
# The committed corpus under testdata/fuzz is always replayed by plain `go test`;
# this adds a short burst of new inputs per target. New crashers land in
# testdata/fuzz/<Target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0 PATH=/usr/local/go/bin:$PATH
FUZZTIME=${FUZZTIME:-5s}
fail=0; n=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    n=$((n+1))
    echo "--- fuzz $pkg $t ($FUZZTIME)"
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
      cat /tmp/fuzz.$$.log; fail=1
    else
      tail -1 /tmp/fuzz.$$.log
    fi
  done
done
rm -f /tmp/fuzz.$$.log
echo "fuzz: $n targets, $([ $fail = 0 ] && echo ok || echo FAILED)"
exit $fail
