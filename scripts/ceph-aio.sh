#!/usr/bin/env bash
# A real one-node Ceph (mon, mgr, one OSD on BlueStore in a file) on loopback for the RBD tests.
#
#   scripts/ceph-aio.sh start            install if needed, deploy once, start, wait until usable
#   scripts/ceph-aio.sh install          only install the packages if missing (root)
#   scripts/ceph-aio.sh stop [--purge]   stop every daemon; --purge also deletes the state dir
#   scripts/ceph-aio.sh status [env]     running or not; "env" prints KEY=value facts for tests
#   scripts/ceph-aio.sh stop-osd         stop only the OSD (a cluster that stops answering)
#   scripts/ceph-aio.sh start-osd        start the OSD again and wait until usable
#
# Settings (environment): CEPH_AIO_DIR (state dir, default /tmp/imageservice-ceph),
# CEPH_AIO_MON_PORT (msgr2, 3300), CEPH_AIO_MON_V1_PORT (legacy msgr, 6789), CEPH_AIO_TIMEOUT
# (seconds to wait for readiness, 90), CEPH_AIO_OSD_SIZE (BlueStore file, 8 GiB, sparse).
# See scripts/README.md.
set -euo pipefail

STATE_DIR=${CEPH_AIO_DIR:-/tmp/imageservice-ceph}
CONF=$STATE_DIR/ceph.conf
RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/log
SETTINGS_FILE=$STATE_DIR/settings.env
PACKAGES=(ceph-mon ceph-osd ceph-mgr ceph-common python3-rados python3-rbd)
# Start order; stop goes the other way round.
PROCESSES=(mon mgr osd)
POOL=images
# A second pool for a second rbd store in the same cluster (copy-image between them).
POOLS=(images images2)
CLIENT=glance

T0=$EPOCHREALTIME

AIO_NAME=ceph-aio
# shellcheck source=scripts/aio-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/aio-common.sh"

# --- settings ---------------------------------------------------------------------------------

# The environment wins, then what the last start recorded, then the defaults.
load_settings() {
    local REC_MON_PORT='' REC_MON_V1_PORT=''
    if [[ -f $SETTINGS_FILE ]]; then
        # shellcheck source=/dev/null
        source "$SETTINGS_FILE"
    fi
    MON_PORT=${CEPH_AIO_MON_PORT:-${REC_MON_PORT:-3300}}
    MON_V1_PORT=${CEPH_AIO_MON_V1_PORT:-${REC_MON_V1_PORT:-6789}}
    TIMEOUT=${CEPH_AIO_TIMEOUT:-90}
    OSD_SIZE=${CEPH_AIO_OSD_SIZE:-8589934592}
}

settings_text() {
    printf 'REC_MON_PORT=%s\nREC_MON_V1_PORT=%s\n' "$MON_PORT" "$MON_V1_PORT"
}

# --- configuration ----------------------------------------------------------------------------

fsid() { cat "$STATE_DIR/fsid"; }

# Everything (data, keyrings, sockets, pids, logs) lives in the state dir, and every tool gets
# -c $CONF: nothing reads or writes /etc/ceph or /var/log/ceph.
write_conf() {
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    [[ -f $STATE_DIR/fsid ]] || cat /proc/sys/kernel/random/uuid >"$STATE_DIR/fsid"
    cat >"$CONF" <<EOF
[global]
fsid = $(fsid)
mon host = [v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
# One OSD, one copy of everything; without these the health stays WARN.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
osd pool default pg autoscale mode = off
# The disk of this machine kind may be below the default 30 % free; the mon stops itself at
# the critical level.
mon data avail warn = 10
mon data avail crit = 2
run dir = $RUN_DIR
admin socket = $RUN_DIR/\$cluster-\$name.asok
pid file = $RUN_DIR/\$name.daemon.pid
log file = $LOG_DIR/\$name.log
mon cluster log file = $LOG_DIR/cluster.log
# No crash reports into /var/lib/ceph/crash.
crash dir = $STATE_DIR/crash

[mon]
mon data = $STATE_DIR/mon/\$cluster-\$id
keyring = $STATE_DIR/mon/\$cluster-\$id/keyring

[mgr]
mgr data = $STATE_DIR/mgr/\$cluster-\$id
keyring = $STATE_DIR/mgr/\$cluster-\$id/keyring

[osd]
osd data = $STATE_DIR/osd/\$cluster-\$id
keyring = $STATE_DIR/osd/\$cluster-\$id/keyring
osd objectstore = bluestore
# BlueStore on a plain sparse file in osd data (no bluestore block path: pointing it at
# \$osd_data/block makes a symlink to itself).
bluestore block create = true
bluestore block size = $OSD_SIZE
# A shared test machine: the default target is 4 GiB of caches.
osd memory target = 1073741824

[client.admin]
keyring = $STATE_DIR/ceph.client.admin.keyring

[client.$CLIENT]
keyring = $STATE_DIR/ceph.client.$CLIENT.keyring
EOF
}

admin() { timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@"; }

# Once per state dir: keys, the monitor's store, the manager's key, the OSD's BlueStore, the
# pool and the client key. Each step leaves a file the next start finds, so a start that died
# half-way resumes where it stopped.
deploy_mon() {
    local data=$STATE_DIR/mon/ceph-a
    [[ -f $data/done ]] && return 0
    rm -rf "$data"
    mkdir -p "$data"
    local tmp=$STATE_DIR/tmp
    mkdir -p "$tmp"
    ceph-authtool --create-keyring "$tmp/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$STATE_DIR/ceph.client.admin.keyring" --gen-key \
        -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' \
        --cap mgr 'allow *' >/dev/null
    ceph-authtool "$tmp/mon.keyring" --import-keyring "$STATE_DIR/ceph.client.admin.keyring" >/dev/null
    monmaptool --create --fsid "$(fsid)" \
        --addv a "[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$tmp/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$tmp/monmap" --keyring "$tmp/mon.keyring" \
        >>"$LOG_DIR/deploy.log" 2>&1 || die "ceph-mon --mkfs failed (log/deploy.log)"
    rm -rf "$tmp"
    touch "$data/done"
    step "monitor a created (fsid $(fsid))"
}

deploy_mgr() {
    local data=$STATE_DIR/mgr/ceph-x
    [[ -f $data/keyring ]] && return 0
    mkdir -p "$data"
    admin auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
        -o "$data/keyring" >>"$LOG_DIR/deploy.log" 2>&1 || die "mgr key failed (log/deploy.log)"
    step "manager x key created"
}

deploy_osd() {
    local data=$STATE_DIR/osd/ceph-0
    [[ -f $data/done ]] && return 0
    rm -rf "$data"
    mkdir -p "$data"
    local uuid key
    uuid=$(cat /proc/sys/kernel/random/uuid)
    key=$(ceph-authtool --gen-print-key)
    printf '{"cephx_secret": "%s"}\n' "$key" >"$data/new.json"
    # A half-deployed osd.0 of an earlier attempt would make `osd new` refuse the new uuid.
    admin osd purge 0 --yes-i-really-mean-it >>"$LOG_DIR/deploy.log" 2>&1 || true
    admin osd new "$uuid" 0 -i "$data/new.json" >>"$LOG_DIR/deploy.log" 2>&1 \
        || die "ceph osd new failed (log/deploy.log)"
    rm -f "$data/new.json"
    ceph-authtool --create-keyring "$data/keyring" --name osd.0 --add-key "$key" >/dev/null
    ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$LOG_DIR/deploy.log" 2>&1 \
        || die "ceph-osd --mkfs failed (log/deploy.log)"
    touch "$data/done"
    step "osd.0 created (BlueStore in $data/block, $((OSD_SIZE / 1073741824)) GiB sparse)"
}

deploy_pools() {
    local done_file=$STATE_DIR/pools.done
    [[ -f $done_file && $(<"$done_file") == "${POOLS[*]}" ]] && return 0
    local pool caps=()
    for pool in "${POOLS[@]}"; do
        if ! admin osd pool ls | grep -qx "$pool"; then
            admin osd pool create "$pool" 8 8 replicated >>"$LOG_DIR/deploy.log" 2>&1 \
                || die "pool create $pool failed (log/deploy.log)"
            timeout 60 rbd -c "$CONF" pool init "$pool" >>"$LOG_DIR/deploy.log" 2>&1 \
                || die "rbd pool init $pool failed (log/deploy.log)"
        fi
        caps+=("profile rbd pool=$pool")
    done
    # glance_store's documented capabilities for its client, on every pool.
    local osd_caps mgr_caps
    osd_caps=$(IFS=,; echo "${caps[*]}")
    mgr_caps=$osd_caps
    admin auth get-or-create "client.$CLIENT" >/dev/null 2>&1 || true
    admin auth caps "client.$CLIENT" mon 'profile rbd' osd "$osd_caps" mgr "$mgr_caps" \
        >>"$LOG_DIR/deploy.log" 2>&1 || die "client caps failed (log/deploy.log)"
    admin auth get "client.$CLIENT" -o "$STATE_DIR/ceph.client.$CLIENT.keyring" \
        >>"$LOG_DIR/deploy.log" 2>&1 || die "client key failed (log/deploy.log)"
    echo "${POOLS[*]}" >"$done_file"
    step "pools ${POOLS[*]} (rbd) and client.$CLIENT key ready"
}

# --- processes --------------------------------------------------------------------------------

pid_file() { echo "$RUN_DIR/$1.pid"; }

daemon_command() {
    case $1 in
        mon) echo ceph-mon -f -c "$CONF" -i a ;;
        mgr) echo ceph-mgr -f -c "$CONF" -i x ;;
        osd) echo ceph-osd -f -c "$CONF" -i 0 ;;
    esac
}

daemon_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ -r /proc/$pid/cmdline ]] || return 1
    # A zombie still has a /proc entry (PID 1 here reaps orphans only every ~2 s).
    group_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-c $CONF" || return 1
    echo "$pid"
}

is_running() { daemon_pid "$1" >/dev/null; }

start_daemon() {
    local name=$1 cmd
    is_running "$name" && return 0
    read -ra cmd <<<"$(daemon_command "$name")"
    launch_detached "$(pid_file "$name")" "$LOG_DIR/$name.out" "${cmd[@]}"
    step "started $name (pid $(<"$(pid_file "$name")"), log log/$name.*)"
}

stop_process() {
    local name=$1 pid
    pid=$(daemon_pid "$name") || { rm -f "$(pid_file "$name")"; return 0; }
    stop_group "$name" "$pid" 15
    rm -f "$(pid_file "$name")"
}

check_ports() {
    is_running mon && return 0
    local port
    for port in "$MON_PORT" "$MON_V1_PORT"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port (for the monitor) is taken on 127.0.0.1: choose others with" \
                "CEPH_AIO_MON_PORT / CEPH_AIO_MON_V1_PORT"
        fi
    done
}

# --- readiness --------------------------------------------------------------------------------

# HEALTH_OK can be stale right after a restart: ready means client.glance wrote an object into
# the pool and read the same bytes back. Polls until then, $1 seconds at most, or a daemon dies.
probe() {
    local wait=$1 deadline probe_file got
    deadline=$(($(date +%s) + ${wait%.*}))
    probe_file=$RUN_DIR/probe.in
    got=$RUN_DIR/probe.out
    head -c 4096 /dev/urandom >"$probe_file"
    while true; do
        local name
        for name in "${PROCESSES[@]}"; do
            is_running "$name" || { echo "$name exited" >&2; return 1; }
        done
        if timeout 15 rados -c "$CONF" --id "$CLIENT" -p "$POOL" put ceph-aio-probe "$probe_file" \
            2>/dev/null \
            && timeout 15 rados -c "$CONF" --id "$CLIENT" -p "$POOL" get ceph-aio-probe "$got" \
                2>/dev/null \
            && cmp -s "$probe_file" "$got"; then
            timeout 15 rados -c "$CONF" --id "$CLIENT" -p "$POOL" rm ceph-aio-probe 2>/dev/null || true
            return 0
        fi
        if (($(date +%s) >= deadline)); then
            echo "not ready after ${wait}s" >&2
            return 1
        fi
        sleep 0.5
    done
}

show_logs() {
    local name file
    for name in mon.a mgr.x osd.0 mon mgr osd deploy; do
        for file in "$LOG_DIR/$name.log" "$LOG_DIR/$name.out"; do
            [[ -s $file ]] || continue
            printf '\n==> %s <==\n' "$file" >&2
            tail -n 15 "$file" >&2
        done
    done
}

wait_ready() {
    if ! probe "$TIMEOUT"; then
        show_logs
        stop_all
        die "Ceph did not become usable; the logs are above and in $LOG_DIR"
    fi
}

# --- commands ---------------------------------------------------------------------------------

cmd_start() {
    take_lock 300
    load_settings
    if any_running && [[ $(settings_text) != "$(cat "$SETTINGS_FILE" 2>/dev/null)" ]]; then
        die "already running with other settings ($SETTINGS_FILE); stop it first"
    fi
    if all_running && [[ $(cat "$STATE_DIR/pools.done" 2>/dev/null) == "${POOLS[*]}" ]] \
        && probe 10 >/dev/null 2>&1; then
        step "already running and healthy: fsid $(fsid), pool $POOL"
        return 0
    fi
    install_packages ceph-osd
    write_conf
    settings_text >"$SETTINGS_FILE"
    check_ports
    deploy_mon
    start_daemon mon
    deploy_mgr
    start_daemon mgr
    deploy_osd
    start_daemon osd
    deploy_pools
    wait_ready
    step "ready: $CONF, client.$CLIENT, pool $POOL, fsid $(fsid)"
}

cmd_stop() {
    local purge=0
    case ${1:-} in
        '') ;;
        --purge) purge=1 ;;
        *) die "usage: $0 stop [--purge]" ;;
    esac
    [[ -d $STATE_DIR ]] || { step "nothing to stop ($STATE_DIR does not exist)"; return 0; }
    take_lock 300
    load_settings
    any_running || step "not running"
    stop_all
    if [[ $purge -eq 1 ]]; then
        rm -rf "$STATE_DIR"
        step "purged $STATE_DIR"
    fi
}

cmd_stop_osd() {
    take_lock 300
    load_settings
    stop_process osd
}

cmd_start_osd() {
    take_lock 300
    load_settings
    is_running mon || die "the monitor is not running: use start"
    start_daemon osd
    wait_ready
    step "ready: osd.0 back"
}

cmd_status() {
    load_settings
    case ${1:-} in
        env)
            cat <<EOF
CEPH_CONF=$CONF
CEPH_USER=$CLIENT
CEPH_POOL=$POOL
CEPH_SECOND_POOL=${POOLS[1]}
CEPH_FSID=$(cat "$STATE_DIR/fsid" 2>/dev/null)
CEPH_ADMIN_KEYRING=$STATE_DIR/ceph.client.admin.keyring
CEPH_AIO_DIR=$STATE_DIR
EOF
            all_running || { echo "ceph-aio: not running" >&2; return 3; }
            ;;
        '')
            local name pid state=0
            for name in "${PROCESSES[@]}"; do
                if pid=$(daemon_pid "$name"); then
                    printf '%-4s running (pid %s)\n' "$name" "$pid"
                else
                    printf '%-4s not running\n' "$name"
                    state=3
                fi
            done
            if [[ $state -eq 0 ]]; then
                echo "running: fsid $(fsid), pool $POOL (state $STATE_DIR)"
            else
                echo "not running (state $STATE_DIR)"
            fi
            return $state
            ;;
        *) die "usage: $0 status [env]" ;;
    esac
}

main() {
    local command_name=${1:-}
    shift || true
    case $command_name in
        start) cmd_start "$@" ;;
        install) mkdir -p "$STATE_DIR" && install_packages ceph-osd ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        stop-osd) cmd_stop_osd ;;
        start-osd) cmd_start_osd ;;
        *)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
            exit 2
            ;;
    esac
}

main "$@"
