# shellcheck shell=bash
# Shell helpers shared by the scripts that bring up real services for the tests
# (swift-aio.sh, keystone-aio.sh, ceph-aio.sh). Sourced, not run: the caller sets AIO_NAME (the
# prefix of its messages), T0 (its start, $EPOCHREALTIME) and STATE_DIR, and PACKAGES (the
# Debian packages it needs) if it calls install_packages.

step() {
    printf '%s: [%5.1fs] %s\n' "$AIO_NAME" "$(elapsed)" "$*"
}

elapsed() {
    # bash has no floating point: let awk subtract the two microsecond timestamps.
    awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

die() {
    printf '%s: error: %s\n' "$AIO_NAME" "$*" >&2
    exit 1
}

# One start/stop at a time per state dir (parallel test sessions may all call start); waits at
# most $1 seconds for another holder.
take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.lock"
    flock -w "$1" 9 || die "another $AIO_NAME holds $STATE_DIR/.lock"
}

# True while a process of group $1 runs. kill -0 is not enough: PID 1 on this machine kind reaps
# orphans only every ~2 s, and a zombie still answers kill -0.
group_alive() {
    local stat line state pgrp
    for stat in /proc/[0-9]*/stat; do
        { read -r line <"$stat"; } 2>/dev/null || continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        read -r state _ pgrp _ <<<"${line##*) }"
        [[ $pgrp == "$1" && $state != Z ]] && return 0
    done
    return 1
}

# Runs COMMAND... ($3 on) in the background as the leader of its own process group, its pid in
# $1 and its output appended to $2. Every stream is redirected and every other descriptor
# closed (the lock, and whatever the caller left open, such as the write end of a CI step's
# pipe): a process holding one makes a caller that reads to end of file wait until it exits.
# Its own group: a parent that signals its group on SIGTERM (Swift's) reaches only its own
# children, never the caller (a CI step, pytest), and stop_group can end the whole tree.
launch_detached() {
    local pid_file=$1 log=$2
    shift 2
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        exec setsid "$@"
    ) </dev/null >>"$log" 2>&1 &
    echo $! >"$pid_file"
}

# Ends the process group that $2 leads ($1 names it in messages): SIGTERM, and SIGKILL after
# $3 seconds.
stop_group() {
    local name=$1 pid=$2 seconds=$3 i
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
        group_alive "$pid" || break
        sleep 0.1
    done
    if group_alive "$pid"; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        step "killed $name (pid $pid) after $seconds s"
    else
        step "stopped $name (pid $pid)"
    fi
}

# --- the processes of a service -------------------------------------------------------------
# For a script that runs several: it lists them in start order in PROCESSES and defines
# is_running NAME and stop_process NAME.

stop_all() {
    local i
    for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do stop_process "${PROCESSES[i]}"; done
}

all_running() {
    local name
    for name in "${PROCESSES[@]}"; do is_running "$name" || return 1; done
}

any_running() {
    local name
    for name in "${PROCESSES[@]}"; do is_running "$name" && return 0; done
    return 1
}

# --- Debian packages ----------------------------------------------------------------------------

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' \
            || echo "$pkg"
    done
}

# Installs whatever of PACKAGES is missing (root only), then says which version of package $1
# is installed.
install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || die "packages missing (${missing[*]}): run this once as root, or" \
        "apt-get install --no-install-recommends ${PACKAGES[*]}"

    step "installing ${missing[*]} (apt-get, --no-install-recommends)"
    # Package scripts would start the services with the packages' configs on the usual ports
    # (where an init system runs): a policy-rc.d that answers 101 ("action forbidden") prevents
    # it. A policy already in place that forbids is kept; any other is set aside and put back
    # afterwards.
    local policy=/usr/sbin/policy-rc.d
    if [[ -e $policy ]] && { "$policy" "$AIO_NAME" start >/dev/null 2>&1 || [[ $? -ne 101 ]]; }; then
        mv "$policy" "$policy.$AIO_NAME-saved"
    fi
    if [[ ! -e $policy ]]; then
        trap restore_policy_rc_d EXIT
        printf '#!/bin/sh\n# %s: no service starts during this install\nexit 101\n' "$AIO_NAME" \
            >"$policy"
        chmod 755 "$policy"
    fi
    # Another apt-get (a parallel `make install`, say) may hold the dpkg lock: wait for it.
    local rc=0
    {
        apt-get -o DPkg::Lock::Timeout=300 update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
                --no-install-recommends "${PACKAGES[@]}"
    } >"$STATE_DIR/apt.log" 2>&1 || rc=$?
    restore_policy_rc_d
    trap - EXIT
    if [[ $rc -ne 0 ]]; then
        tail -n 30 "$STATE_DIR/apt.log" >&2
        die "apt-get failed (full log: $STATE_DIR/apt.log)"
    fi
    step "installed $1 $(dpkg-query -W -f='${Version}' "$1" 2>/dev/null)"
}

restore_policy_rc_d() {
    local policy=/usr/sbin/policy-rc.d
    if grep -qs "^# $AIO_NAME:" "$policy"; then rm -f "$policy"; fi
    if [[ -e $policy.$AIO_NAME-saved ]]; then mv "$policy.$AIO_NAME-saved" "$policy"; fi
}
