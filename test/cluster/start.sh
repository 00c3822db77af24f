#!/bin/bash
# start.sh NAME: start the named throw-away Ceph test cluster on 127.0.0.1.
#
# NAME is one of: pacific pacific3 pacific-osd3 reef reef-osd3 tentacle
# tentacle256 tentacle-osd3 pacific-secure noauth (see cluster_profile in
# lib.sh and README.md). The cluster lives in
# $GORBD_CLUSTERS/NAME (default /var/tmp/gorbd/clusters/NAME), which is wiped
# and recreated on every start; daemons already running from there are stopped
# first. When the cluster is usable, NAME/cluster.env (KEY=VALUE lines) is
# written; it does not exist while the cluster is starting or stopped.
#
# Pacific clusters use the host's binaries; reef and tentacle* use a Debian
# chroot under $GORBD_CHROOTS (built by chroot.sh on first use).
#
# Environment (optional):
#   OBJECTSTORE=memstore|bluestore  (default memstore; pacific-osd3: bluestore)
#   MEMSTORE_BYTES                  (default 2147483648 = 2 GiB; RAM is used only as data is written)
#   BLUESTORE_SIZE                  (default 10737418240, sparse file)
#   AUTH_MON_TICKET_TTL, AUTH_SERVICE_TICKET_TTL  (seconds >= 30; default:
#                                   Ceph's own, 72h and 1h)
#   WAIT_S                          (default 180) seconds to wait for health
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 NAME" >&2; exit 2; }
NAME=$1
cluster_profile "$NAME"
D=$CLUSTERS/$NAME
OBJECTSTORE=${OBJECTSTORE:-$STORE}
MEMSTORE_BYTES=${MEMSTORE_BYTES:-2147483648}
BLUESTORE_SIZE=${BLUESTORE_SIZE:-10737418240}
WAIT_S=${WAIT_S:-180}
case "$OBJECTSTORE" in memstore|bluestore) ;; *) echo "OBJECTSTORE must be memstore or bluestore" >&2; exit 2;; esac
for v in AUTH_MON_TICKET_TTL AUTH_SERVICE_TICKET_TTL; do
  # tickets are renewed well before expiry; below 30 s the renewals churn
  [ -z "${!v:-}" ] || { [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 30 ]; } \
    || { echo "$v must be a number of seconds >= 30" >&2; exit 2; }
done

T0=$(now)
log() { printf '[%s %6.1fs] %s\n' "$NAME" "$(elapsed "$T0")" "$*"; }

# --- Ceph binaries: host or chroot -------------------------------------------
if [ -n "$SUITE" ]; then
  ROOT=$(chroot_root "$SUITE")
  "$CLUSTER_HERE/chroot.sh" "$SUITE"
  VERLINE=$(cat "$ROOT/.gorbd-ready")
  CLI="$CLUSTER_HERE/in-chroot.sh $ROOT $D"
else
  ROOT=""
  command -v ceph-mon >/dev/null || { echo "ceph-mon not installed on the host: run test/deps.sh" >&2; exit 1; }
  VERLINE=$(ceph --version)
  CLI=""
fi
VER=$(awk '{print $3}' <<<"$VERLINE"); REL=$(awk '{print $5}' <<<"$VERLINE")

# --- stop a previous instance, make a fresh directory ----------------------
"$CLUSTER_HERE/stop.sh" "$NAME" >/dev/null

MON_IDS=(a b c); MON_IDS=("${MON_IDS[@]:0:$NMON}")
MONHOST=""; V2LIST=""; V1LIST=""; ADDV=()
for i in $(seq 0 $((NMON - 1))); do
  p2=$((PB + 2 * i)); p1=$((p2 + 1))
  for p in $p2 $p1; do
    if ss -Htln "( sport = :$p )" | grep -q .; then
      echo "ERROR: port $p is already in use:" >&2; ss -tlnp "( sport = :$p )" >&2; exit 1
    fi
  done
  if [ "$MSMODE" = secure ]; then
    # msgr1 has no secure mode: a secure-only cluster offers msgr2 only
    av="[v2:127.0.0.1:$p2]"
  else
    av="[v2:127.0.0.1:$p2,v1:127.0.0.1:$p1]"; V1LIST+="${V1LIST:+,}127.0.0.1:$p1"
  fi
  MONHOST+="${MONHOST:+,}$av"; V2LIST+="${V2LIST:+,}127.0.0.1:$p2"
  ADDV+=(--addv "${MON_IDS[$i]}" "$av")
done
PMIN=$((PB + 2 * NMON)); PMAX=$((PB + 49))

if [ -e "$D" ] && [ ! -f "$D/.gorbd-cluster" ] && [ -n "$(ls -A "$D")" ]; then
  echo "ERROR: $D exists, is not empty and was not made by $0" >&2; exit 1
fi
rm -rf --one-file-system "$D"
mkdir -p "$D"/{run,log}
echo "$NAME" > "$D/.gorbd-cluster"
FSID=$(cat /proc/sys/kernel/random/uuid)

# --- cephx key types ----------------------------------------------------------
# Ceph >= 20.2.4 / 19.2.6 (CVE-2025-30156) create cephx keys of the new type
# aes256k and its monmaps allow only aes256k, which older clients can neither
# parse nor use. KEYTYPE=aes keeps such a cluster usable by them: the monmap
# allows aes256k,aes (aes preferred), client.admin gets an AES-128 key, the
# daemons keep aes256k keys, and client.admin256 (aes256k) goes to a keyring
# of its own. Separate keyrings matter: one aes256k entry in a keyring makes
# an old client reject the whole file.
HAS_AES256K=0; ADMIN_KT=(); MONMAP_CIPHERS=(); DAEMON_KT=(); MON_EXTRA=""
if cephrun monmaptool --help 2>&1 | grep -q -- --auth-allowed-ciphers; then
  HAS_AES256K=1; DAEMON_KT=(--key_type aes256k)
  if [ "$KEYTYPE" = aes ]; then
    ADMIN_KT=(--key-type aes)       # ceph-authtool knows only the long form
    # shellcheck disable=SC2054  # "aes256k,aes" is one argument
    MONMAP_CIPHERS=(--auth-allowed-ciphers aes256k,aes --auth-preferred-cipher aes)
    MON_EXTRA="mon auth allow insecure key = true"
  fi
fi

# --- ceph.conf ----------------------------------------------------------------
if [ "$OBJECTSTORE" = memstore ]; then
  STORE="osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES"
else
  STORE="osd objectstore = bluestore
bluestore block create = true
bluestore block size = $BLUESTORE_SIZE
bluestore block db create = false
bluestore block wal create = false
osd memory target = 939524096"
fi
EXTRA=""
if [ "$MSMODE" = secure ]; then
  # Only msgr2 secure mode is offered and accepted, on every kind of
  # connection, so a client that can only do crc (or msgr1) is refused.
  EXTRA+="ms bind msgr1 = false
ms cluster mode = secure
ms service mode = secure
ms client mode = secure
ms mon cluster mode = secure
ms mon service mode = secure
ms mon client mode = secure
"
fi
if [ "$FASTFAIL" = 1 ]; then
  # Fault tests kill OSDs: peers report a dead OSD at once (connection
  # refused) or after a short heartbeat grace, one reporter is enough (all
  # OSDs share one host), a down OSD is marked out after 30 s, and
  # recovery after a restart is not throttled (the device file looks
  # like an HDD, whose default is a 0.1 s sleep per recovery op).
  EXTRA+="osd heartbeat interval = 1
osd heartbeat grace = 5
osd fast fail on connection refused = true
mon osd min down reporters = 1
mon osd reporter subtree level = osd
mon osd adjust heartbeat grace = false
mon osd down out interval = 30
osd recovery sleep hdd = 0
osd recovery sleep hybrid = 0
osd recovery max active = 8
osd max backfills = 8
"
fi
[ -z "${AUTH_MON_TICKET_TTL:-}" ] || EXTRA+="auth mon ticket ttl = $AUTH_MON_TICKET_TTL
"
[ -z "${AUTH_SERVICE_TICKET_TTL:-}" ] || EXTRA+="auth service ticket ttl = $AUTH_SERVICE_TICKET_TTL
"
cat > "$D/ceph.conf" <<CONF
# $NAME: throw-away test cluster made by test/cluster/start.sh ($VER $REL)
[global]
fsid = $FSID
mon host = $MONHOST
mon initial members = $(IFS=,; echo "${MON_IDS[*]}")
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind port min = $PMIN
ms bind port max = $PMAX
auth cluster required = $AUTH
auth service required = $AUTH
auth client required = $AUTH
auth allow insecure global id reclaim = false
run dir = $D/run
log file = $D/log/\$name.log
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
keyring = $D/keyring
mon data = $D/\$name
osd data = $D/\$name
mgr data = $D/\$name
osd pool default size = $PSIZE
osd pool default min size = $PMINSIZE
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
mgr initial modules = iostat nfs
$STORE
$EXTRA
[mon]
keyring = $D/\$name/keyring
$MON_EXTRA

[client]
# one admin socket per client process, so concurrent clients do not collide
admin socket = $D/run/\$name.\$pid.asok
CONF
C=(-c "$D/ceph.conf")
log "creating $VER $REL cluster in $D (mons $V2LIST, daemons $PMIN-$PMAX, auth $AUTH${MSMODE:+, ms $MSMODE}, $OBJECTSTORE)"

# --- monitors -------------------------------------------------------------------
# mon. lives only in the mons' own keyrings; DIR/keyring holds client.admin only.
cephrun ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
cephrun ceph-authtool --create-keyring "$D/keyring" --gen-key -n client.admin "${ADMIN_KT[@]}" \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
cephrun ceph-authtool "$D/mon.keyring" --import-keyring "$D/keyring" >/dev/null
cephrun monmaptool --create "${ADDV[@]}" "${MONMAP_CIPHERS[@]}" --fsid "$FSID" "$D/monmap" >/dev/null
for id in "${MON_IDS[@]}"; do
  mkdir -p "$D/mon.$id"
  cephrun ceph-mon "${C[@]}" -i "$id" --mkfs --monmap "$D/monmap" --keyring "$D/mon.keyring"
done
rm -f "$D/mon.keyring"
for id in "${MON_IDS[@]}"; do cephrun ceph-mon "${C[@]}" -i "$id"; done
log "mon(s) ${MON_IDS[*]} started"

ceph_() { cephrun ceph "${C[@]}" --connect-timeout 10 "$@"; }
DEADLINE=$(( $(date +%s) + WAIT_S ))
timeout_check() {
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    echo "ERROR: $NAME not healthy after ${WAIT_S}s ($1):" >&2
    ceph_ -s >&2 || true; exit 1
  fi
}
while :; do
  q=$(ceph_ quorum_status -f json 2>/dev/null | grep -o '"quorum_names":\[[^]]*\]' || true)
  n=$( (grep -o '"[a-z]"' <<<"${q#*:}" || true) | wc -l)
  [ "$n" -eq "$NMON" ] && break
  timeout_check "quorum: ${q:-none}"
  sleep 0.5
done
log "quorum of $NMON"

# --- mgr, osd, pool ------------------------------------------------------------
if [ "$WITH_OSD" = 1 ]; then
  mkdir -p "$D/mgr.x"
  ceph_ auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' "${DAEMON_KT[@]}" > "$D/mgr.x/keyring"
  cephrun ceph-mgr "${C[@]}" -i x --keyring "$D/mgr.x/keyring"
  log "mgr started"
  # OSD ids 0..NOSD-1: registered one by one, mkfs in parallel (bluestore
  # mkfs takes seconds each), then started.
  MKFS=()
  for i in $(seq 0 $((NOSD - 1))); do
    mkdir -p "$D/osd.$i"
    UUID=$(cat /proc/sys/kernel/random/uuid)
    SECRET=$(cephrun ceph-authtool --gen-print-key)
    echo "{\"cephx_secret\": \"$SECRET\"}" > "$D/osd.$i.json"
    OSDID=$(ceph_ osd new "$UUID" -i "$D/osd.$i.json")
    rm -f "$D/osd.$i.json"
    [ "$OSDID" = "$i" ] || { echo "unexpected osd id '$OSDID' (wanted $i)" >&2; exit 1; }
    cephrun ceph-authtool --create-keyring "$D/osd.$i/keyring" --name "osd.$i" --add-key "$SECRET" >/dev/null
    cephrun ceph-osd "${C[@]}" -i "$i" --mkfs --osd-uuid "$UUID" --keyring "$D/osd.$i/keyring" > "$D/log/osd.$i.mkfs.out" 2>&1 &
    MKFS+=($!)
  done
  for i in $(seq 0 $((NOSD - 1))); do
    wait "${MKFS[$i]}" || { cat "$D/log/osd.$i.mkfs.out" >&2; exit 1; }
    cephrun ceph-osd "${C[@]}" -i "$i" --keyring "$D/osd.$i/keyring" 2> "$D/log/osd.$i.start.err"
  done
  log "$NOSD osd(s) started"
  ceph_ osd pool create rbd 8 8 >/dev/null 2>&1
  cephrun rbd "${C[@]}" pool init rbd
  log "pool rbd created and initialised for rbd"
fi
if [ "$HAS_AES256K" = 1 ]; then
  ceph_ auth get-or-create client.admin256 mon 'allow *' osd 'allow *' mgr 'allow *' mds 'allow *' \
    --key_type aes256k -o "$D/keyring.aes256k" >/dev/null 2>&1
  log "client.admin256 (aes256k) in $D/keyring.aes256k"
fi

# --- wait for health --------------------------------------------------------------
if [ "$WITH_OSD" = 1 ]; then
  muted=" "
  while :; do
    if [ "${#MONMAP_CIPHERS[@]}" -gt 0 ]; then
      # These checks exist by design in the aes compat mode and have no
      # config switch: mute them (sticky) so health can reach HEALTH_OK.
      for code in $(ceph_ health detail -f json 2>/dev/null | grep -o '"AUTH_INSECURE_[A-Z_]*"' | tr -d '"' | sort -u); do
        case "$muted" in *" $code "*) continue;; esac
        ceph_ health mute "$code" --sticky >/dev/null 2>&1 && { muted+="$code "; log "muted $code"; }
      done
    fi
    # HEALTH_OK alone is not enough: new PGs sit in creating+peering for a
    # few seconds before a health check notices them.
    h=$(ceph_ health 2>/dev/null || true); pg=$(ceph_ pg stat 2>/dev/null || true)
    if [ "${h%% *}" = HEALTH_OK ] && grep -Eq '^([0-9]+) pgs: \1 active\+clean;' <<<"$pg"; then break; fi
    timeout_check "health: $h; pgs: $pg"
    sleep 1
  done
  log "$h, ${pg%%;*}"
fi

# --- cluster.env --------------------------------------------------------------------
key_of() { awk '$1=="key"{print $3; exit}' "$1"; }
{
  echo "# written by test/cluster/start.sh $NAME at $(date -u +%FT%TZ)"
  echo "CEPH_NAME=$NAME"
  echo "CEPH_DIR=$D"
  echo "CEPH_VERSION=$VER"
  echo "CEPH_RELEASE=$REL"
  echo "CEPH_SUITE=${SUITE:-host}"
  echo "CEPH_CONF=$D/ceph.conf"
  echo "CEPH_KEYRING=$D/keyring"
  echo "CEPH_FSID=$FSID"
  echo "CEPH_MON_HOST=$MONHOST"
  echo "CEPH_MON_V2=$V2LIST"
  echo "CEPH_MON_V1=$V1LIST"
  echo "CEPH_MON_IDS=$(IFS=,; echo "${MON_IDS[*]}")"
  echo "CEPH_ADMIN_KEY=$(key_of "$D/keyring")"
  echo "CEPH_AUTH=$AUTH"
  echo "CEPH_MS_MODE=${MSMODE:-default}"
  if [ "$HAS_AES256K" = 1 ] && [ "$KEYTYPE" = aes ]; then echo "CEPH_ADMIN_KEY_TYPE=aes"
  elif [ "$HAS_AES256K" = 1 ]; then echo "CEPH_ADMIN_KEY_TYPE=aes256k"
  else echo "CEPH_ADMIN_KEY_TYPE=aes"; fi
  if [ -f "$D/keyring.aes256k" ]; then
    echo "CEPH_ADMIN256_KEYRING=$D/keyring.aes256k"
    echo "CEPH_ADMIN256_KEY=$(key_of "$D/keyring.aes256k")"
  fi
  if [ "$WITH_OSD" = 1 ]; then echo "CEPH_POOL=rbd"; echo "CEPH_OBJECTSTORE=$OBJECTSTORE"; fi
  if [ "$WITH_OSD" = 1 ]; then echo "CEPH_OSD_IDS=$(seq -s, 0 $((NOSD - 1)))"; fi
  echo "CEPH_CLI=\"$CLI\""
  [ -z "${AUTH_MON_TICKET_TTL:-}" ] || echo "CEPH_AUTH_MON_TICKET_TTL=$AUTH_MON_TICKET_TTL"
  [ -z "${AUTH_SERVICE_TICKET_TTL:-}" ] || echo "CEPH_AUTH_SERVICE_TICKET_TTL=$AUTH_SERVICE_TICKET_TTL"
  echo "CEPH_START_SECONDS=$(elapsed "$T0")"
} > "$D/cluster.env.tmp"
mv "$D/cluster.env.tmp" "$D/cluster.env"
log "ready: $VER $REL, mons $V2LIST, env in $D/cluster.env"
