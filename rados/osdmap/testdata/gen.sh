#!/bin/sh
# Regenerates the OSDMap golden files with the installed osdmaptool (Ceph
# 16.2.15 here). NAME.osdmap is a binary map; NAME.golden.gz holds
# osdmaptool --test-map-pgs-dump-all output (pool headers and pg lines),
# each run preceded by "# run ARGS" with the osdmaptool arguments that
# osdmap_test.go replays (and re-runs through osdmaptool when present).
set -eu
cd "$(dirname "$0")"
CRUSH=../../crush/testdata

runs() { # name run-args...
	name=$1
	shift
	tmp=$(mktemp)
	for args in "$@"; do
		# Pacific's osdmaptool can spin forever on some tree maps with
		# almost every OSD out; such runs are left out.
		# shellcheck disable=SC2086
		if ! out=$(timeout 60 osdmaptool "$name.osdmap" $args --test-map-pgs-dump-all 2>/dev/null); then
			echo "gen.sh: $name: osdmaptool $args failed, skipped" >&2
			continue
		fi
		echo "# run $args" >>"$tmp"
		printf '%s\n' "$out" | grep -E '^pool |raw \(' >>"$tmp"
	done
	gzip -9n <"$tmp" >"$name.golden.gz"
	rm -f "$tmp"
}

simple() { # name num_osds pg_bits [crush map]
	rm -f "$1.osdmap"
	osdmaptool --createsimple "$2" --pg-bits "$3" --pgp-bits "$3" --with-default-pool "$1.osdmap" >/dev/null 2>&1
	if [ $# -ge 4 ]; then
		osdmaptool "$1.osdmap" --import-crush "$4" >/dev/null 2>&1
	fi
}

STD="--mark-up-in|--mark-up-in --mark-out 1|--mark-in 2|--mark-up-in --mark-out 0 --pool 1"
std_runs() {
	IFS='|'
	# shellcheck disable=SC2086
	set -- "$1" $STD
	unset IFS
	runs "$@"
}

simple simple6 6 6
std_runs simple6

for c in uniform list tree straw mixed odd legacy varyr classes chooseargs; do
	n=$(crushtool -i "$CRUSH/$c.crush" --dump 2>/dev/null | python3 -c 'import json,sys; print(max(1,len(json.load(sys.stdin)["devices"])))')
	simple "$c" "$n" 4 "$CRUSH/$c.crush"
	std_runs "$c"
done

# 1000 OSDs over 10 racks x 10 hosts, straw2.
crushtool -o /tmp/gen-big.crush --build --num_osds 1000 host straw2 10 rack straw2 10 root straw2 0 >/dev/null
simple big1000 1000 2 /tmp/gen-big.crush
rm -f /tmp/gen-big.crush
runs big1000 "--mark-up-in" "--mark-up-in --mark-out 17"

# pg_upmap_items computed by the balancer and saved into the map.
crushtool -o /tmp/gen-up.crush --build --num_osds 20 host straw2 4 root straw2 0 >/dev/null
simple upmap 20 3 /tmp/gen-up.crush
rm -f /tmp/gen-up.crush
osdmaptool upmap.osdmap --mark-up-in --upmap /dev/null --upmap-max 40 --upmap-deviation 1 --save >/dev/null 2>&1
runs upmap "--mark-up-in" "--mark-up-in --mark-out 5"

# Maps from the live test clusters (test/cluster) are committed as
# live-RELEASE.osdmap; their goldens come from that release's own
# osdmaptool (in its chroot for Reef and Tentacle):
#   test/cluster/in-chroot.sh trixie DIR osdmaptool live-reef.osdmap --test-map-pgs-dump-all
# See live.sh.
