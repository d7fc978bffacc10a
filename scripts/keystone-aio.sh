#!/usr/bin/env bash
# A real OpenStack Keystone (identity v3) on loopback for the tests of Keystone mode.
#
#   scripts/keystone-aio.sh start                  install if needed, configure, start, provision
#   scripts/keystone-aio.sh stop [--purge]         stop Keystone; --purge also deletes the state dir
#   scripts/keystone-aio.sh status [env]           running or not; "env" prints KEY=value facts
#   scripts/keystone-aio.sh set-image-endpoint URL point the image service's endpoints at URL
#
# Settings (environment): KEYSTONE_AIO_DIR (state dir, default /tmp/imageservice-keystone),
# KEYSTONE_AIO_PORT (5000), KEYSTONE_AIO_IMAGE_URL (the imageservice the catalog's image
# endpoints point at, http://127.0.0.1:9292), KEYSTONE_AIO_TIMEOUT (seconds to wait for
# readiness, 120), KEYSTONE_AIO_PYTHON (interpreter for Keystone's own virtualenv, python3).
# See scripts/README.md.
set -euo pipefail

STATE_DIR=${KEYSTONE_AIO_DIR:-/tmp/imageservice-keystone}
ETC_DIR=$STATE_DIR/etc
RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/log
VENV=$STATE_DIR/venv
SETTINGS_FILE=$STATE_DIR/settings.env
FACTS_FILE=$STATE_DIR/facts.env
PID_FILE=$RUN_DIR/keystone.pid
LOG_FILE=$LOG_DIR/keystone.log
# Keystone and its large dependency set live apart from the project's virtualenv.
KEYSTONE_REQUIREMENTS=(keystone==30.0.0 gunicorn==27.0.1)
PYTHON=${KEYSTONE_AIO_PYTHON:-python3}
REGION=RegionOne
# Fixed test credentials: nothing here protects anything but a throw-away loopback Keystone.
ADMIN_PASSWORD=admin-secret

T0=$EPOCHREALTIME

AIO_NAME=keystone-aio
# shellcheck source=scripts/aio-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/aio-common.sh"

# The environment wins, then what the last start recorded, then the defaults.
load_settings() {
    local REC_PORT='' REC_IMAGE_URL=''
    if [[ -f $SETTINGS_FILE ]]; then
        # shellcheck source=/dev/null
        source "$SETTINGS_FILE"
    fi
    PORT=${KEYSTONE_AIO_PORT:-${REC_PORT:-5000}}
    IMAGE_URL=${KEYSTONE_AIO_IMAGE_URL:-${REC_IMAGE_URL:-http://127.0.0.1:9292}}
    TIMEOUT=${KEYSTONE_AIO_TIMEOUT:-120}
    AUTH_URL=http://127.0.0.1:$PORT/v3
}

save_settings() {
    printf 'REC_PORT=%s\nREC_IMAGE_URL=%s\n' "$PORT" "$IMAGE_URL" >"$SETTINGS_FILE"
}


# --- installation -----------------------------------------------------------------------------

ensure_venv() {
    local marker=$VENV/.installed
    [[ -f $marker && $(<"$marker") == "${KEYSTONE_REQUIREMENTS[*]}" ]] && return 0
    step "creating Keystone's virtualenv ($VENV: ${KEYSTONE_REQUIREMENTS[*]})"
    "$PYTHON" -m venv "$VENV" || die "cannot create a virtualenv with $PYTHON"
    if ! { "$VENV/bin/pip" install -q --upgrade pip \
        && "$VENV/bin/pip" install -q "${KEYSTONE_REQUIREMENTS[@]}"; } >"$STATE_DIR/pip.log" 2>&1; then
        tail -n 30 "$STATE_DIR/pip.log" >&2
        die "pip install failed (full log: $STATE_DIR/pip.log)"
    fi
    echo "${KEYSTONE_REQUIREMENTS[*]}" >"$marker"
    step "installed $("$VENV/bin/pip" show keystone 2>/dev/null | sed -n 's/^Version: /keystone /p')"
}

# --- configuration ----------------------------------------------------------------------------

write_config() {
    mkdir -p "$ETC_DIR" "$RUN_DIR" "$LOG_DIR"
    cat >"$ETC_DIR/keystone.conf" <<EOF
[DEFAULT]
use_stderr = true

[database]
connection = sqlite:///$STATE_DIR/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = $ETC_DIR/fernet-keys

[fernet_receipts]
key_repository = $ETC_DIR/receipt-keys

[credential]
key_repository = $ETC_DIR/credential-keys

[identity]
# bcrypt only looks at 72 bytes; a longer limit logs "Truncating password" on every login.
max_password_length = 72
# The default bcrypt cost is 0.35-0.85 s of CPU per login on this machine kind.
password_hash_rounds = 4

[resource]
# Without it every project is the admin project (X-Is-Admin-Project: True for all).
admin_project_name = admin
admin_project_domain_name = Default

[cache]
# Validation drops from 120-370 ms to ~10 ms. In-process memory: right for one worker only.
enabled = true
backend = dogpile.cache.memory
EOF
    # Keystone parses sys.argv, which under gunicorn holds gunicorn's flags: every worker would
    # exit 2. This entry module empties it before the application is imported.
    cat >"$ETC_DIR/keystone_aio_wsgi.py" <<'EOF'
import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402,F401
EOF
}

keystone_manage() {
    OS_KEYSTONE_CONFIG_FILES=$ETC_DIR/keystone.conf \
        "$VENV/bin/keystone-manage" --config-file "$ETC_DIR/keystone.conf" "$@" \
        >>"$LOG_DIR/keystone-manage.log" 2>&1 \
        || { tail -n 20 "$LOG_DIR/keystone-manage.log" >&2; die "keystone-manage $1 failed"; }
}

# Database, key repositories and the bootstrap admin: once per state dir.
ensure_database() {
    [[ -f $STATE_DIR/.bootstrapped ]] && return 0
    local owner=(--keystone-user "$(id -un)" --keystone-group "$(id -gn)")
    keystone_manage db_sync
    keystone_manage fernet_setup "${owner[@]}"
    keystone_manage receipt_setup "${owner[@]}"
    keystone_manage credential_setup "${owner[@]}"
    keystone_manage bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
        --bootstrap-admin-url "$AUTH_URL/" --bootstrap-public-url "$AUTH_URL/" \
        --bootstrap-internal-url "$AUTH_URL/" --bootstrap-region-id "$REGION"
    touch "$STATE_DIR/.bootstrapped"
    step "database, Fernet keys and bootstrap admin ready ($STATE_DIR/keystone.db)"
}

# --- process ----------------------------------------------------------------------------------

keystone_pid() {
    local pid
    [[ -f $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ -r /proc/$pid/cmdline ]] || return 1
    # Still ours: gunicorn with this state dir's entry module.
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--chdir $ETC_DIR" || return 1
    echo "$pid"
}

is_running() { keystone_pid >/dev/null; }

start_keystone() {
    is_running && return 0
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        die "port $PORT is taken on 127.0.0.1: choose another with KEYSTONE_AIO_PORT"
    fi
    # Its own process group (launch_detached), which stop ends as a whole.
    # --no-control-socket: gunicorn 27 otherwise opens one fixed path per user, shared by every
    # gunicorn on the machine. One worker: the in-process cache is only correct in one process;
    # threads serve concurrent clients.
    launch_detached "$PID_FILE" "$LOG_FILE" env OS_KEYSTONE_CONFIG_FILES="$ETC_DIR/keystone.conf" \
        "$VENV/bin/gunicorn" --chdir "$ETC_DIR" --bind "127.0.0.1:$PORT" \
        --workers 1 --worker-class gthread --threads 4 --timeout 120 \
        --no-control-socket --pid "$PID_FILE.gunicorn" keystone_aio_wsgi:application
    # The pid is the launching subshell's until it has exec'd gunicorn: until then keystone_pid
    # does not know it as ours.
    local i
    for ((i = 0; i < 100; i++)); do
        is_running && break
        sleep 0.1
    done
    step "started Keystone (pid $(<"$PID_FILE"), log log/keystone.log)"
}

stop_keystone() {
    local pid
    pid=$(keystone_pid) || { rm -f "$PID_FILE"; step "not running"; return 0; }
    stop_group Keystone "$pid" 10
    rm -f "$PID_FILE"
}


# --- provisioning through Keystone's API ------------------------------------------------------

# Waits until an admin password login works (or $1 seconds pass, or Keystone exits), then makes
# sure every project, user, role assignment, the image service and its endpoints exist as the
# tests expect, and writes their ids to facts.env. Idempotent: each object is looked up by name
# first. Standard library only, on Keystone's interpreter.
provision() {
    local wait=$1 pid
    pid=$(keystone_pid) || die "Keystone is not running"
    "$VENV/bin/python" - "$wait" "$pid" "$AUTH_URL" "$ADMIN_PASSWORD" "$IMAGE_URL" "$REGION" \
        "$FACTS_FILE" <<'PY'
import json, sys, time, urllib.error, urllib.request

wait, pid, auth_url, admin_password, image_url, region, facts_file = sys.argv[1:]
deadline = time.monotonic() + float(wait)

# name → (password, project, roles); passwords are fixed test values.
USERS = {
    "admin": ("admin-secret", "admin", ["admin"]),
    "alice": ("alice-secret", "alpha", ["member"]),
    "bob": ("bob-secret", "beta", ["member"]),
    "rita": ("rita-secret", "alpha", ["reader"]),
    "glance": ("glance-secret", "service", ["service", "admin"]),
    "helper": ("helper-secret", "service", ["member"]),
}
PROJECTS = ("admin", "service", "alpha", "beta")
ROLES = ("admin", "member", "reader", "service")


def call(method, path, token=None, body=None, ok=(200, 201, 204)):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(auth_url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            return resp.status, dict(resp.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        if error.code in ok:
            return error.code, dict(error.headers), None
        raise RuntimeError("%s %s answered %s: %s" % (method, path, error.code, error.read()[:300]))


def login():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": admin_password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    _, headers, _ = call("POST", "/auth/tokens", body=body)
    return headers["X-Subject-Token"]


def alive():
    try:
        with open("/proc/%s/stat" % pid) as f:
            return not f.read().rsplit(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return False


while True:
    if not alive():
        sys.exit("Keystone exited (pid %s)" % pid)
    try:
        token = login()
        break
    except (OSError, RuntimeError, KeyError) as exc:
        error = exc
    if time.monotonic() >= deadline:
        sys.exit("not ready after %ss: %s" % (wait, error))
    time.sleep(0.5)


def ensure(collection, name, body, query="name=%s"):
    _, _, found = call("GET", "/%s?%s" % (collection, query % name), token)
    items = found[collection]
    if items:
        return items[0]
    _, _, created = call("POST", "/" + collection, token, {collection[:-1]: body})
    return created[collection[:-1]]


roles = {name: ensure("roles", name, {"name": name})["id"] for name in ROLES}
projects = {
    name: ensure("projects", name, {"name": name, "domain_id": "default"})["id"]
    for name in PROJECTS
}
facts = {"KEYSTONE_DOMAIN_ID": "default"}
for user, (password, project, user_roles) in USERS.items():
    body = {"name": user, "domain_id": "default", "password": password,
            "default_project_id": projects[project]}
    user_id = ensure("users", user, body)["id"]
    for role in user_roles:
        call("PUT", "/projects/%s/users/%s/roles/%s" % (projects[project], user_id, roles[role]),
             token)
    key = user.upper()
    facts.update({key + "_USER": user, key + "_PASSWORD": password, key + "_USER_ID": user_id,
                  key + "_PROJECT": project})
for name, project_id in projects.items():
    facts[name.upper() + "_PROJECT_ID"] = project_id

service = ensure("services", "image", {"type": "image", "name": "glance",
                                        "description": "imageservice"}, query="type=%s")
_, _, found = call("GET", "/endpoints?service_id=%s" % service["id"], token)
endpoints = {e["interface"]: e for e in found["endpoints"]}
for interface in ("public", "internal", "admin"):
    endpoint = endpoints.get(interface)
    if endpoint is None:
        call("POST", "/endpoints", token, {"endpoint": {
            "service_id": service["id"], "interface": interface, "url": image_url,
            "region_id": region}})
    elif endpoint["url"] != image_url:
        call("PATCH", "/endpoints/" + endpoint["id"], token, {"endpoint": {"url": image_url}})
facts["KEYSTONE_IMAGE_URL"] = image_url

with open(facts_file + ".tmp", "w") as f:
    f.writelines("%s=%s\n" % item for item in sorted(facts.items()))
import os
os.replace(facts_file + ".tmp", facts_file)
PY
}

provision_or_stop() {
    if ! provision "$1"; then
        [[ -f $LOG_FILE ]] && tail -n 40 "$LOG_FILE" >&2
        stop_keystone
        die "Keystone did not become usable; its log is above and in $LOG_FILE"
    fi
}

# --- commands ---------------------------------------------------------------------------------

cmd_start() {
    take_lock 600
    load_settings
    if is_running && [[ $(cat "$SETTINGS_FILE" 2>/dev/null) != "REC_PORT=$PORT"* ]]; then
        die "already running with other settings ($SETTINGS_FILE); stop it first"
    fi
    if is_running && provision 5 >/dev/null 2>&1; then
        save_settings
        step "already running and healthy: $AUTH_URL (image endpoints: $IMAGE_URL)"
        return 0
    fi
    ensure_venv
    write_config
    ensure_database
    save_settings
    start_keystone
    provision_or_stop "$TIMEOUT"
    step "ready: $AUTH_URL (image endpoints: $IMAGE_URL)"
}

cmd_stop() {
    local purge=0
    case ${1:-} in
        '') ;;
        --purge) purge=1 ;;
        *) die "usage: $0 stop [--purge]" ;;
    esac
    [[ -d $STATE_DIR ]] || { step "nothing to stop ($STATE_DIR does not exist)"; return 0; }
    take_lock 600
    load_settings
    stop_keystone
    if [[ $purge -eq 1 ]]; then
        rm -rf "$STATE_DIR"
        step "purged $STATE_DIR"
    fi
}

cmd_set_image_endpoint() {
    [[ -n ${1:-} ]] || die "usage: $0 set-image-endpoint URL"
    take_lock 600
    load_settings
    is_running || die "Keystone is not running: use start"
    IMAGE_URL=$1
    provision 30
    save_settings
    step "image endpoints now $IMAGE_URL"
}

cmd_status() {
    load_settings
    case ${1:-} in
        env)
            [[ -f $FACTS_FILE ]] || { echo "keystone-aio: never provisioned" >&2; return 3; }
            printf 'KEYSTONE_AUTH_URL=%s\nKEYSTONE_REGION=%s\nKEYSTONE_AIO_DIR=%s\n' \
                "$AUTH_URL" "$REGION" "$STATE_DIR"
            cat "$FACTS_FILE"
            is_running || { echo "keystone-aio: not running" >&2; return 3; }
            ;;
        '')
            local pid
            if pid=$(keystone_pid); then
                echo "running: $AUTH_URL (pid $pid, state $STATE_DIR)"
            else
                echo "not running (state $STATE_DIR)"
                return 3
            fi
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
        set-image-endpoint) cmd_set_image_endpoint "$@" ;;
        *)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
            exit 2
            ;;
    esac
}

main "$@"
