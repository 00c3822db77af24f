#!/bin/sh
# Refreshes live-*.golden.gz for the committed live-*.osdmap files with each
# release's own osdmaptool: Pacific from the host, Reef and Tentacle from the
# test chroots. Maps are fetched separately with
#   ceph osd getmap -o live-RELEASE.osdmap
# against the test/cluster cluster of that release.
set -eu
cd "$(dirname "$0")"
REPO=$(cd ../../.. && pwd)
tool() { # release map args...
	rel=$1
	shift
	case $rel in
	pacific*) osdmaptool "$@" ;;
	reef*) "$REPO/test/cluster/in-chroot.sh" trixie /tmp osdmaptool "$@" ;;
	tentacle*) "$REPO/test/cluster/in-chroot.sh" forky /tmp osdmaptool "$@" ;;
	esac
}
for f in live-*.osdmap; do
	name=${f%.osdmap}
	rel=${name#live-}
	tmp=$(mktemp /tmp/live-golden.XXXXXX)
	cp "$f" "$tmp.map"
	for args in "" "--mark-up-in" "--mark-up-in --mark-out 2"; do
		echo "# run $args" >>"$tmp"
		# shellcheck disable=SC2086
		tool "$rel" "$tmp.map" $args --test-map-pgs-dump-all 2>/dev/null | grep -E '^pool |raw \(' >>"$tmp"
	done
	gzip -9n <"$tmp" >"$name.golden.gz"
	rm -f "$tmp" "$tmp.map"
done
