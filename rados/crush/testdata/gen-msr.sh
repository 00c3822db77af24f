#!/bin/sh
# MSR rules need Squid or later: compiles msr.txt.squid and records
# mappings with the Tentacle crushtool of the test chroot (test/cluster).
# crush_test.go does not re-run these through the host's Pacific crushtool.
set -eu
cd "$(dirname "$0")"
REPO=$(cd ../../.. && pwd)
T=$(mktemp -d /tmp/gen-msr.XXXXXX)
ct() { "$REPO/test/cluster/in-chroot.sh" forky /tmp crushtool "$@"; }
cp msr.txt.squid "$T/msr.txt"
ct -c "$T/msr.txt" -o "$T/msr.crush"
cp "$T/msr.crush" msr.crush
X="--min-x 0 --max-x 511"
: >msr.mappings
for args in "--rule 0 --num-rep 6 $X" "--rule 0 --num-rep 6 $X --weight 3 0 --weight 7 0 --weight 8 0.5" \
	"--rule 1 --num-rep 3 $X" "--rule 1 --num-rep 4 $X --weight 0 0 --weight 1 0 --weight 2 0" \
	"--rule 2 --num-rep 4 $X --weight 5 0"; do
	echo "# run $args" >>msr.mappings
	# shellcheck disable=SC2086
	ct -i "$T/msr.crush" --test --show-mappings $args 2>/dev/null | grep '^CRUSH rule' >>msr.mappings
done
rm -rf "$T"
