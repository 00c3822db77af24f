#!/bin/sh
# Regenerates the CRUSH golden files with the installed crushtool (Ceph
# 16.2.15 here). Each NAME.crush is a binary map; NAME.mappings holds
# crushtool --test --show-mappings output, each run preceded by a line
#   # run <crushtool test arguments>
# that crush_test.go replays (and re-runs through crushtool when present).
set -eu
cd "$(dirname "$0")"

build() { # name num_osds layers...
	name=$1 n=$2
	shift 2
	crushtool -o "$name.crush" --build --num_osds "$n" "$@" >/dev/null
}

runs() { # name run-args...
	name=$1
	shift
	: >"$name.mappings"
	for args in "$@"; do
		echo "# run $args" >>"$name.mappings"
		# shellcheck disable=SC2086
		crushtool -i "$name.crush" --test --show-mappings $args 2>/dev/null |
			grep '^CRUSH rule' >>"$name.mappings"
	done
}

X="--min-x 0 --max-x 511"

build uniform 12 host uniform 3 root uniform 0
crushtool -i uniform.crush --create-simple-rule ec root host indep -o uniform.crush >/dev/null
runs uniform "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 4 $X" "--rule 0 --num-rep 2 $X --weight 4 0 --weight 7 0.5"

build list 16 host list 4 rack list 2 root list 0
crushtool -i list.crush --create-simple-rule ec root host indep -o list.crush >/dev/null
runs list "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 3 $X --weight 1 0" "--rule 0 --num-rep 5 $X --weight 2 0.3"

build tree 20 host tree 4 root tree 0
crushtool -i tree.crush --create-simple-rule ec root host indep -o tree.crush >/dev/null
runs tree "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 4 $X --weight 5 0"

build straw 40 host straw 5 rack straw 2 root straw 0
crushtool -i straw.crush --create-simple-rule ec root host indep -o straw.crush >/dev/null
runs straw "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 6 $X --weight 9 0 --weight 10 0.7"

build straw2 1000 host straw2 10 rack straw2 10 root straw2 0
crushtool -i straw2.crush --create-simple-rule ec root host indep -o straw2.crush >/dev/null
crushtool -i straw2.crush --create-simple-rule rackrule root rack firstn -o straw2.crush >/dev/null
runs straw2 "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 8 $X --weight 17 0 --weight 100 0.25" "--rule 2 --num-rep 3 $X"

build mixed 27 host straw2 3 rack tree 3 root list 0
crushtool -i mixed.crush --create-simple-rule ec root host indep -o mixed.crush >/dev/null
runs mixed "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 5 $X"

build single 1 host straw2 1 root straw2 0
runs single "--rule 0 --num-rep 3 $X"

build odd 7 host straw2 3 root straw2 0
crushtool -i odd.crush --create-simple-rule ec root host indep -o odd.crush >/dev/null
runs odd "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 3 $X --weight 6 0"

# Legacy and intermediate tunables on the same hierarchy.
build legacy 24 host straw 4 root straw 0
crushtool -i legacy.crush --set-choose-local-tries 2 --set-choose-local-fallback-tries 5 \
	--set-choose-total-tries 19 --set-chooseleaf-descend-once 0 --set-chooseleaf-vary-r 0 \
	--set-chooseleaf-stable 0 -o legacy.crush >/dev/null 2>&1
runs legacy "--rule 0 --num-rep 3 $X" "--rule 0 --num-rep 3 $X --weight 3 0 --weight 8 0"

build varyr 24 host straw2 4 root straw2 0
crushtool -i varyr.crush --set-chooseleaf-vary-r 1 --set-chooseleaf-stable 0 -o varyr.crush >/dev/null 2>&1
runs varyr "--rule 0 --num-rep 3 $X" "--rule 0 --num-rep 4 $X --weight 1 0 --weight 2 0"

# Text maps compiled here: device classes (shadow trees) and choose_args.
for t in *.txt; do
	name=${t%.txt}
	crushtool -c "$t" -o "$name.crush"
done
runs classes "--rule 0 --num-rep 3 $X" "--rule 1 --num-rep 2 $X" "--rule 2 --num-rep 3 $X --weight 0 0"
runs chooseargs "--rule 0 --num-rep 3 $X" "--rule 0 --num-rep 2 $X --weight 5 0"
