# shellcheck shell=bash
# Shell helpers shared by the scripts that bring up real services for the tests
# (swift-aio.sh, keystone-aio.sh). Sourced, not run: the caller sets AIO_NAME (the prefix of
# its messages), T0 (its start, $EPOCHREALTIME) and STATE_DIR.

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
