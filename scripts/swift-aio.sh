#!/usr/bin/env bash
# A real OpenStack Swift, all in one and with its S3 API, on loopback for the tests.
#
#   scripts/swift-aio.sh start            install if needed, configure, start, wait until usable
#   scripts/swift-aio.sh stop [--purge]   stop every server; --purge also deletes the state dir
#   scripts/swift-aio.sh status [env]     running or not; "env" prints KEY=value facts for tests
#   scripts/swift-aio.sh stop-proxy       stop only the proxy (a store that goes away)
#   scripts/swift-aio.sh start-proxy      start the proxy again and wait until usable
#
# Settings (environment): SWIFT_AIO_DIR (state dir, default /tmp/imageservice-swift),
# SWIFT_AIO_PORT (proxy, 8080), SWIFT_AIO_OBJECT_PORT / _CONTAINER_PORT / _ACCOUNT_PORT
# (6200 / 6201 / 6202), SWIFT_AIO_MEMCACHED_PORT (11212), SWIFT_AIO_PROXY_WORKERS (2),
# SWIFT_AIO_TIMEOUT (seconds to wait for readiness, 60), SWIFT_AIO_TMPFS_SIZE (device size on
# tmpfs, 4g; "0" keeps the device a plain directory), SWIFT_AIO_KEYSTONE_URL (a Keystone v3 URL:
# the proxy also takes Keystone tokens, for accounts KEY_<project id>, and the catalog gets an
# object-store service pointing at it; unset: tempauth only), SWIFT_AIO_KEYSTONE_USER /
# _PASSWORD / _PROJECT (the service user validating tokens and registering the endpoints,
# glance / glance-secret / service as scripts/keystone-aio.sh makes it). See scripts/README.md.
set -euo pipefail

STATE_DIR=${SWIFT_AIO_DIR:-/tmp/imageservice-swift}
ETC_DIR=$STATE_DIR/etc
RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/log
DEVICES_DIR=$STATE_DIR/srv
DEVICE=d1
SETTINGS_FILE=$STATE_DIR/settings.env
# Every Swift server reads this fixed path, whatever swift_dir says.
SWIFT_CONF=/etc/swift/swift.conf
# Swift's servers are Debian's and run on Debian's interpreter, not the first python3 on PATH.
SYSTEM_PYTHON=/usr/bin/python3
PACKAGES=(swift swift-proxy swift-object swift-container swift-account memcached)
# Start order; stop goes the other way round.
PROCESSES=(memcached account container object proxy)

SWIFT_USER=test:tester
SWIFT_KEY=testing
S3_REGION=us-east-1
# Accounts of Keystone projects (tempauth's are AUTH_<account>).
KEYSTONE_PREFIX=KEY_

T0=$EPOCHREALTIME

AIO_NAME=swift-aio
# shellcheck source=scripts/aio-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/aio-common.sh"

# --- settings ---------------------------------------------------------------------------------

# The environment wins, then what the last start recorded, then the defaults: so `status env`
# and `stop` in another shell talk about the instance that is actually running.
load_settings() {
    local REC_PROXY_PORT='' REC_OBJECT_PORT='' REC_CONTAINER_PORT='' REC_ACCOUNT_PORT=''
    local REC_MEMCACHED_PORT='' REC_PROXY_WORKERS='' REC_KEYSTONE_URL=''
    if [[ -f $SETTINGS_FILE ]]; then
        # shellcheck source=/dev/null
        source "$SETTINGS_FILE"
    fi
    PROXY_PORT=${SWIFT_AIO_PORT:-${REC_PROXY_PORT:-8080}}
    OBJECT_PORT=${SWIFT_AIO_OBJECT_PORT:-${REC_OBJECT_PORT:-6200}}
    CONTAINER_PORT=${SWIFT_AIO_CONTAINER_PORT:-${REC_CONTAINER_PORT:-6201}}
    ACCOUNT_PORT=${SWIFT_AIO_ACCOUNT_PORT:-${REC_ACCOUNT_PORT:-6202}}
    MEMCACHED_PORT=${SWIFT_AIO_MEMCACHED_PORT:-${REC_MEMCACHED_PORT:-11212}}
    PROXY_WORKERS=${SWIFT_AIO_PROXY_WORKERS:-${REC_PROXY_WORKERS:-2}}
    KEYSTONE_URL=${SWIFT_AIO_KEYSTONE_URL:-${REC_KEYSTONE_URL:-}}
    KEYSTONE_URL=${KEYSTONE_URL%/}
    KEYSTONE_USER=${SWIFT_AIO_KEYSTONE_USER:-glance}
    KEYSTONE_PASSWORD=${SWIFT_AIO_KEYSTONE_PASSWORD:-glance-secret}
    KEYSTONE_PROJECT=${SWIFT_AIO_KEYSTONE_PROJECT:-service}
    if [[ -n $KEYSTONE_URL ]]; then
        # keystonemiddleware's auth_token, for Debian's interpreter the servers run on.
        PACKAGES+=(python3-keystonemiddleware)
    fi
    TIMEOUT=${SWIFT_AIO_TIMEOUT:-60}
    TMPFS_SIZE=${SWIFT_AIO_TMPFS_SIZE:-4g}
}

settings_text() {
    cat <<EOF
REC_PROXY_PORT=$PROXY_PORT
REC_OBJECT_PORT=$OBJECT_PORT
REC_CONTAINER_PORT=$CONTAINER_PORT
REC_ACCOUNT_PORT=$ACCOUNT_PORT
REC_MEMCACHED_PORT=$MEMCACHED_PORT
REC_PROXY_WORKERS=$PROXY_WORKERS
EOF
    # Only when set: the record of an instance without Keystone reads as before.
    if [[ -n $KEYSTONE_URL ]]; then echo "REC_KEYSTONE_URL=$KEYSTONE_URL"; fi
}


# --- configuration ----------------------------------------------------------------------------

ensure_swift_conf() {
    [[ -f $SWIFT_CONF ]] && return 0
    [[ -w $(dirname "$SWIFT_CONF") || $(id -u) -eq 0 ]] || die "$SWIFT_CONF is missing; run as root"
    mkdir -p "$(dirname "$SWIFT_CONF")"
    # The hash path prefix/suffix only has to be stable for the life of the data: random is fine.
    cat >"$SWIFT_CONF" <<EOF
[swift-hash]
swift_hash_path_prefix = $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
swift_hash_path_suffix = $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

[storage-policy:0]
name = Policy-0
default = yes
EOF
    step "wrote $SWIFT_CONF (it was absent)"
}

# Settings that the three storage servers share.
storage_defaults() {
    local port=$1
    cat <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
# One process per server is plenty for tests and keeps stopping simple.
workers = 0
user = $(id -un)
swift_dir = $ETC_DIR
devices = $DEVICES_DIR
# The device is a directory (or a tmpfs), not a dedicated mounted disk.
mount_check = false
EOF
}

write_configs() {
    mkdir -p "$ETC_DIR" "$RUN_DIR" "$LOG_DIR"
    {
        storage_defaults "$ACCOUNT_PORT"
        printf '\n[pipeline:main]\npipeline = account-server\n\n'
        printf '[app:account-server]\nuse = egg:swift#account\n'
    } >"$ETC_DIR/account-server.conf"
    {
        storage_defaults "$CONTAINER_PORT"
        printf '\n[pipeline:main]\npipeline = container-server\n\n'
        printf '[app:container-server]\nuse = egg:swift#container\n'
    } >"$ETC_DIR/container-server.conf"
    {
        storage_defaults "$OBJECT_PORT"
        cat <<'EOF'

[pipeline:main]
pipeline = object-server

[app:object-server]
use = egg:swift#object
# The default (1 s) lets the container update time out on a loaded machine: the object is
# stored but a listing right after the PUT misses it until an updater runs (none runs here).
container_update_timeout = 10
EOF
    } >"$ETC_DIR/object-server.conf"

    # Pipeline in the order of Swift's sample proxy-server.conf. catch_errors, gatekeeper,
    # listing_formats and versioned_writes would be inserted by Swift anyway, with a warning;
    # proxy-logging gives an access log line per request in log/proxy.log, which is what one
    # reads when a test fails.
    cat >"$ETC_DIR/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = $PROXY_WORKERS
user = $(id -un)
swift_dir = $ETC_DIR

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api $(keystone_filters)tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# With one device, a single 507 or timeout otherwise makes the proxy skip the device for 60 s,
# and every object request answers 503 meanwhile.
error_suppression_interval = 0

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
# tempauth keeps its tokens here: without memcached no token validates.
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = $S3_REGION

[filter:tempauth]
use = egg:swift#tempauth
user_${SWIFT_USER%%:*}_${SWIFT_USER#*:} = $SWIFT_KEY .admin

$(keystone_filter_sections)
[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
EOF
}

# With a Keystone, its tokens are validated by auth_token and authorized by keystoneauth, for
# accounts KEY_<project id>; tempauth keeps AUTH_test (and S3) working beside it, which is why
# auth_token only marks a token it cannot validate and lets the filters after it decide.
keystone_filters() {
    if [[ -n $KEYSTONE_URL ]]; then printf 'authtoken keystoneauth '; fi
}

keystone_filter_sections() {
    [[ -n $KEYSTONE_URL ]] || return 0
    cat <<EOF
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $KEYSTONE_URL
auth_url = $KEYSTONE_URL
auth_type = password
username = $KEYSTONE_USER
password = $KEYSTONE_PASSWORD
project_name = $KEYSTONE_PROJECT
user_domain_id = default
project_domain_id = default
delay_auth_decision = true

[filter:keystoneauth]
use = egg:swift#keystoneauth
reseller_prefix = $KEYSTONE_PREFIX
operator_roles = admin, member

EOF
}

storage_url_template() {
    echo "http://127.0.0.1:$PROXY_PORT/v1/${KEYSTONE_PREFIX}%(project_id)s"
}

# The object-store service and its three endpoints in Keystone's catalog, pointing at this
# proxy (created, or corrected when they point elsewhere). Standard library only.
register_in_keystone() {
    [[ -n $KEYSTONE_URL ]] || return 0
    "$SYSTEM_PYTHON" - "$KEYSTONE_URL" "$KEYSTONE_USER" "$KEYSTONE_PASSWORD" "$KEYSTONE_PROJECT" \
        "$(storage_url_template)" <<'PY' || die "registering the object-store endpoints failed"
import json, sys, urllib.request

auth_url, user, password, project, url = sys.argv[1:]


def call(method, path, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(auth_url + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read()
        return dict(resp.headers), json.loads(text) if text else None


scope = {"project": {"name": project, "domain": {"id": "default"}}}
identity = {"methods": ["password"], "password": {"user": {
    "name": user, "domain": {"id": "default"}, "password": password}}}
headers, body = call("POST", "/auth/tokens", body={"auth": {"identity": identity, "scope": scope}})
token = headers["X-Subject-Token"]
project_id = body["token"]["project"]["id"]
_, found = call("GET", "/services?type=object-store", token)
if found["services"]:
    service = found["services"][0]
else:
    _, made = call("POST", "/services", token, {"service": {
        "type": "object-store", "name": "swift", "description": "swift-aio"}})
    service = made["service"]
_, found = call("GET", "/endpoints?service_id=" + service["id"], token)
endpoints = {e["interface"]: e for e in found["endpoints"]}
for interface in ("public", "internal", "admin"):
    endpoint = endpoints.get(interface)
    if endpoint is None:
        call("POST", "/endpoints", token, {"endpoint": {
            "service_id": service["id"], "interface": interface, "url": url,
            "region_id": "RegionOne"}})
    elif endpoint["url"] != url:
        call("PATCH", "/endpoints/" + endpoint["id"], token, {"endpoint": {"url": url}})
# The proxy takes the token: its project's account answers (created on first use).
account = url.replace("%(project_id)s", project_id)
request = urllib.request.Request(account, headers={"X-Auth-Token": token}, method="HEAD")
with urllib.request.urlopen(request, timeout=30) as resp:
    if resp.status not in (200, 204):
        sys.exit("HEAD %s with a Keystone token answered %s" % (account, resp.status))
PY
    step "object-store endpoints in $KEYSTONE_URL: $(storage_url_template)"
}

# One device, one replica: a ring per server type, rebuilt only when the storage ports change.
# One interpreter doing all three through Swift's RingBuilder (the library behind
# swift-ring-builder) takes ~1 s; the nine swift-ring-builder calls take 10 s on a loaded machine.
ensure_rings() {
    local fingerprint="account=$ACCOUNT_PORT container=$CONTAINER_PORT object=$OBJECT_PORT"
    if [[ -f $ETC_DIR/rings.ports && $(<"$ETC_DIR/rings.ports") == "$fingerprint" ]] \
        && [[ -f $ETC_DIR/account.ring.gz && -f $ETC_DIR/container.ring.gz \
            && -f $ETC_DIR/object.ring.gz ]]; then
        return 0
    fi
    "$SYSTEM_PYTHON" - "$ETC_DIR" "$DEVICE" "account=$ACCOUNT_PORT" "container=$CONTAINER_PORT" \
        "object=$OBJECT_PORT" >"$LOG_DIR/rings.log" 2>&1 <<'PY' \
        || { tail -n 20 "$LOG_DIR/rings.log" >&2; die "building the rings failed"; }
import os, sys
from swift.common.ring import RingBuilder

etc, device = sys.argv[1:3]
for arg in sys.argv[3:]:
    kind, port = arg.split("=")
    # 2^10 partitions, 1 replica, partitions may move again after 1 hour (irrelevant here).
    builder = RingBuilder(10, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": device, "weight": 100})
    builder.rebalance()
    builder.save(os.path.join(etc, kind + ".builder"))
    builder.get_ring().save(os.path.join(etc, kind + ".ring.gz"))
PY
    echo "$fingerprint" >"$ETC_DIR/rings.ports"
    step "built account, container and object rings (1 device, 1 replica)"
}

# Swift keeps object metadata in user xattrs. ext4 has them, but only ~4 KiB per file, so an
# object with ~3.5 KB of user metadata gets 503; tmpfs (kernel >= 6.6) gives Swift's full limit.
ensure_device() {
    local dir=$DEVICES_DIR/$DEVICE
    mkdir -p "$dir"
    if ! mountpoint -q "$dir" && [[ $TMPFS_SIZE != 0 ]] && [[ $(id -u) -eq 0 ]]; then
        if mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0755" swift-aio "$dir" 2>/dev/null; then
            if xattr_capacity "$dir" 8192; then
                step "device $dir on tmpfs (size $TMPFS_SIZE)"
            else
                umount "$dir"
            fi
        fi
    fi
    mountpoint -q "$dir" && return 0
    xattr_capacity "$dir" 1 || die "$dir has no user xattrs: Swift cannot store objects there"
    xattr_capacity "$dir" 8192 \
        || step "device $dir is a directory (user metadata limited to ~3.5 KB per object)"
}

# True when a file in $1 takes $2 bytes of user xattrs in 254-byte values, as Swift writes them.
xattr_capacity() {
    "$SYSTEM_PYTHON" - "$1" "$2" <<'PY'
import os, sys, tempfile
with tempfile.NamedTemporaryFile(dir=sys.argv[1]) as f:
    try:
        for i in range(int(sys.argv[2]) // 254 + 1):
            os.setxattr(f.name, "user.swift-aio.%d" % i, b"x" * 254)
    except OSError:
        sys.exit(1)
PY
}

# --- processes --------------------------------------------------------------------------------

pid_file() { echo "$RUN_DIR/$1.pid"; }

server_command() {
    case $1 in
        memcached)
            local as_root=()
            # memcached refuses to run as root without being told to.
            if [[ $(id -u) -eq 0 ]]; then as_root=(-u root); fi
            echo memcached "${as_root[@]}" -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -c 1024 -v
            ;;
        # -v logs to stderr; otherwise Swift logs only to /dev/log, which does not exist here,
        # and then silently sends everything to UDP port 514.
        *) echo "swift-$1-server" "$ETC_DIR/$1-server.conf" -v ;;
    esac
}

# Something in the process's command line that proves a recorded pid is still ours.
server_marker() {
    case $1 in
        memcached) echo "-p $MEMCACHED_PORT" ;;
        *) echo "$ETC_DIR/$1-server.conf" ;;
    esac
}

server_pid() {
    local file pid
    file=$(pid_file "$1")
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(server_marker "$1")" || return 1
    echo "$pid"
}

is_running() { server_pid "$1" >/dev/null; }

server_port() {
    case $1 in
        memcached) echo "$MEMCACHED_PORT" ;;
        account) echo "$ACCOUNT_PORT" ;;
        container) echo "$CONTAINER_PORT" ;;
        object) echo "$OBJECT_PORT" ;;
        proxy) echo "$PROXY_PORT" ;;
    esac
}

# Swift retries a busy port for 30 s before it gives up: check the ports of the servers about
# to start first, and say at once which one is in the way.
check_ports() {
    local name port
    for name in "$@"; do
        is_running "$name" && continue
        port=$(server_port "$name")
        # Something accepts connections there (bash's /dev/tcp: no extra tool needed).
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            die "port $port (for $name) is taken on 127.0.0.1: choose others with SWIFT_AIO_*_PORT"
        fi
    done
}

start_server() {
    local name=$1 cmd
    if is_running "$name"; then
        return 0
    fi
    read -ra cmd <<<"$(server_command "$name")"
    # Each server leads its own process group (launch_detached): a Swift parent that signals its
    # group on SIGTERM reaches only its workers, and stop ends the whole tree.
    launch_detached "$(pid_file "$name")" "$LOG_DIR/$name.log" "${cmd[@]}"
    step "started $name (pid $(<"$(pid_file "$name")"), log log/$name.log)"
}

stop_process() {
    local name=$1 pid
    pid=$(server_pid "$name") || { rm -f "$(pid_file "$name")"; return 0; }
    # The whole group: a Swift parent and its workers (start_server made each a group leader).
    stop_group "$name" "$pid" 10
    rm -f "$(pid_file "$name")"
}


running_pids() {
    local name
    for name in "$@"; do server_pid "$name" || true; done
}

# --- readiness --------------------------------------------------------------------------------

# Polls until the proxy's /healthcheck answers and a real tempauth login, container PUT, object
# PUT/GET and S3 ListBuckets (SigV4) work, or $1 seconds pass, or a server dies. Standard
# library only: it runs before any test virtualenv exists.
probe() {
    local wait=$1
    shift
    "$SYSTEM_PYTHON" - "$wait" "$PROXY_PORT" "$SWIFT_USER" "$SWIFT_KEY" "$S3_REGION" "$@" <<'PY'
import datetime, hashlib, hmac, http.client, os, sys, time

wait, port, user, key, region = float(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]
pids = [int(p) for p in sys.argv[6:]]
host = "127.0.0.1:%d" % port
bucket = "swift-aio-probe-%d" % os.getpid()


def request(method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def expect(what, status, ok):
    if status not in ok:
        raise RuntimeError("%s answered %s" % (what, status))


def s3_list_buckets():
    # AWS Signature Version 4 for GET /, as boto3 signs it.
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(["GET", "/", "", "host:" + host, "x-amz-content-sha256:" + payload,
                           "x-amz-date:" + stamp, "", signed, payload])
    scope = "%s/%s/s3/aws4_request" % (stamp[:8], region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + key).encode()
    for part in (stamp[:8], region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        user, scope, signed, signature)
    return request("GET", "/", {"Host": host, "x-amz-date": stamp,
                                "x-amz-content-sha256": payload, "Authorization": auth})


def attempt():
    status, _, body = request("GET", "/healthcheck")
    expect("GET /healthcheck", status, (200,))
    status, headers, _ = request("GET", "/auth/v1.0", {"X-Auth-User": user, "X-Auth-Key": key})
    expect("tempauth login", status, (200, 204))
    headers = {k.lower(): v for k, v in headers}
    token = {"X-Auth-Token": headers["x-auth-token"]}
    base = headers["x-storage-url"].split(host, 1)[1]
    container = base + "/" + bucket
    status, _, _ = request("PUT", container, token)
    expect("container PUT", status, (201, 202))
    data = os.urandom(4096)
    try:
        status, _, _ = request("PUT", container + "/probe", token, data)
        expect("object PUT", status, (201,))
        status, _, got = request("GET", container + "/probe", token)
        expect("object GET", status, (200,))
        if got != data:
            raise RuntimeError("object GET returned other bytes")
        status, _, body = s3_list_buckets()
        expect("S3 ListBuckets", status, (200,))
        if ("<Name>%s</Name>" % bucket).encode() not in body:
            raise RuntimeError("S3 ListBuckets does not list the probe container")
    finally:
        # Leave the account as empty as we found it: tests may list it.
        request("DELETE", container + "/probe", token)
        request("DELETE", container, token)


deadline = time.monotonic() + wait
while True:
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                # A zombie has exited too (PID 1 here reaps orphans only every few seconds).
                dead = f.read().rsplit(") ", 1)[1].startswith("Z")
        except FileNotFoundError:
            dead = True
        if dead:
            sys.exit("a server exited (pid %d)" % pid)
    try:
        attempt()
        sys.exit(0)
    except (OSError, RuntimeError, KeyError, http.client.HTTPException) as exc:
        error = exc
    if time.monotonic() >= deadline:
        sys.exit("not ready after %gs: %s" % (wait, error))
    time.sleep(0.2)
PY
}

show_logs() {
    local name
    for name in "${PROCESSES[@]}"; do
        [[ -f $LOG_DIR/$name.log ]] || continue
        printf '\n==> %s <==\n' "$LOG_DIR/$name.log" >&2
        tail -n 25 "$LOG_DIR/$name.log" >&2
    done
}

# Waits for readiness; on failure shows the logs and stops everything, so that the next start
# begins clean instead of finding half a Swift.
wait_ready() {
    local pids
    mapfile -t pids < <(running_pids "${PROCESSES[@]}")
    if ! probe "$TIMEOUT" "${pids[@]}"; then
        show_logs
        stop_all
        die "Swift did not become usable; the logs are above and in $LOG_DIR"
    fi
}

# --- commands ---------------------------------------------------------------------------------

cmd_start() {
    take_lock 300
    load_settings
    # Configs and rings follow the settings: changing them under running servers would leave
    # those serving the old ones.
    if any_running && [[ $(settings_text) != "$(cat "$SETTINGS_FILE" 2>/dev/null)" ]]; then
        die "already running with other settings ($SETTINGS_FILE); stop it first"
    fi
    if all_running && probe 5 >/dev/null 2>&1; then
        step "already running and healthy: http://127.0.0.1:$PROXY_PORT"
        return 0
    fi
    install_packages swift
    ensure_swift_conf
    write_configs
    ensure_rings
    ensure_device
    settings_text >"$SETTINGS_FILE"
    check_ports "${PROCESSES[@]}"
    local name
    for name in "${PROCESSES[@]}"; do start_server "$name"; done
    wait_ready
    register_in_keystone
    step "ready: Swift http://127.0.0.1:$PROXY_PORT/auth/v1.0, S3 http://127.0.0.1:$PROXY_PORT"
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
        if mountpoint -q "$DEVICES_DIR/$DEVICE"; then umount "$DEVICES_DIR/$DEVICE"; fi
        rm -rf "$STATE_DIR"
        step "purged $STATE_DIR"
    fi
}

cmd_stop_proxy() {
    take_lock 300
    load_settings
    stop_process proxy
}

cmd_start_proxy() {
    take_lock 300
    load_settings
    local name
    for name in "${PROCESSES[@]}"; do
        [[ $name == proxy ]] || is_running "$name" || die "$name is not running: use start"
    done
    check_ports proxy
    start_server proxy
    wait_ready
    step "ready: proxy http://127.0.0.1:$PROXY_PORT"
}

cmd_status() {
    load_settings
    case ${1:-} in
        env)
            cat <<EOF
SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
SWIFT_AUTH_VERSION=1
SWIFT_USER=$SWIFT_USER
SWIFT_KEY=$SWIFT_KEY
SWIFT_STORAGE_URL=http://127.0.0.1:$PROXY_PORT/v1/AUTH_${SWIFT_USER%%:*}
S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT
S3_ACCESS_KEY=$SWIFT_USER
S3_SECRET_KEY=$SWIFT_KEY
S3_REGION=$S3_REGION
S3_ADDRESSING_STYLE=path
SWIFT_AIO_DIR=$STATE_DIR
SWIFT_KEYSTONE_URL=$KEYSTONE_URL
SWIFT_KEYSTONE_ACCOUNT_PREFIX=$KEYSTONE_PREFIX
EOF
            all_running || { echo "swift-aio: not running" >&2; return 3; }
            ;;
        '')
            local name pid state=0
            for name in "${PROCESSES[@]}"; do
                if pid=$(server_pid "$name"); then
                    printf '%-10s running (pid %s)\n' "$name" "$pid"
                else
                    printf '%-10s not running\n' "$name"
                    state=3
                fi
            done
            if [[ $state -eq 0 ]]; then
                local device=directory
                if mountpoint -q "$DEVICES_DIR/$DEVICE"; then device=tmpfs; fi
                echo "running: http://127.0.0.1:$PROXY_PORT (state $STATE_DIR, device on $device)"
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
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        stop-proxy) cmd_stop_proxy ;;
        start-proxy) cmd_start_proxy ;;
        *)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
            exit 2
            ;;
    esac
}

main "$@"
