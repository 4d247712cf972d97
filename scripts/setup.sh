#!/usr/bin/env bash
# Installs what geoha needs on Debian 12 and builds the project's virtualenv.
# Idempotent: a second run installs nothing and takes a few seconds.
# Works as root, or as an ordinary user with sudo.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
STAMP="$VENV/.geoha-installed"

log() { echo "[setup] $*"; }
die() { echo "[setup] error: $*" >&2; exit 1; }

# --- apt packages ----------------------------------------------------------
PACKAGES=(
    postgresql-15 postgresql-client-15 etcd-server etcd-client
    haproxy caddy iptables wrk curl ca-certificates python3-venv dnsutils
    iproute2  # ss: the listener inventory test
    chromium chromium-driver
    cloud-init
    # For `systemd-analyze verify` of the cloud VMs' units only. Where systemd is not
    # PID 1 (a container), its package scripts start nothing.
    systemd
)
# A Node.js from another source (e.g. NodeSource, which ships its own npm)
# may already be on PATH; Debian's nodejs/npm would conflict with it.
if ! command -v node >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing apt packages: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "missing packages (${missing[*]}) need root: run as root, or as a user with sudo"
    fi
    # Package scripts may try to start services (etcd, haproxy, caddy, the
    # default PostgreSQL cluster); there is no systemd here and geoha starts
    # its own processes, so those services are not needed.
    # No recommends: chromium's would pull in systemd, avahi, cups, ...
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    # cloud-init is here only for `cloud-init schema`, which checks the rendered
    # cloud-config files. Installed by us, it must never act at this machine's boot.
    if [[ " ${missing[*]} " == *" cloud-init "* ]]; then
        "${SUDO[@]}" mkdir -p /etc/cloud
        "${SUDO[@]}" touch /etc/cloud/cloud-init.disabled
        log "cloud-init installed for its schema check only, disabled at boot"
    fi
else
    log "apt packages: all present"
fi

# --- virtualenv (system python, never a pyenv one) -------------------------
venv_ok() {
    [ -x "$VENV/bin/python" ] && [ -f "$VENV/pyvenv.cfg" ] &&
        grep -Eq '^home[[:space:]]*=[[:space:]]*/usr/bin[[:space:]]*$' "$VENV/pyvenv.cfg"
}

if ! venv_ok; then
    log "creating virtualenv $VENV with /usr/bin/python3"
    /usr/bin/python3 -m venv --clear "$VENV"
    rm -f "$STAMP"
fi

if [ -f "$STAMP" ] && [ "$STAMP" -nt "$REPO/pyproject.toml" ]; then
    log "python packages: up to date"
else
    log "installing python packages into .venv (pip install -e '.[dev]')"
    "$VENV/bin/pip" install -q --upgrade pip
    (cd "$REPO" && "$VENV/bin/pip" install -q -e '.[dev]')
    touch "$STAMP"
fi

# --- can user postgres reach the repository? --------------------------------
# As root, PostgreSQL and Patroni run as the unprivileged user postgres. When
# this checkout is private (e.g. under /root), postgres cannot run Patroni from
# .venv: build a Patroni virtualenv it can reach (geoha then uses it, and keeps
# its default run directory under /var/lib/geoha).
reachable() {
    local dir="$1"
    while [ "$dir" != "/" ]; do
        dir="$(dirname "$dir")"
        [ -n "$(find "$dir" -maxdepth 0 -perm -o+x 2>/dev/null)" ] || return 1
    done
}
if [ "$(id -u)" -eq 0 ] && ! reachable "$VENV/bin"; then
    shared=/opt/geoha/venv
    if [ ! -x "$shared/bin/patroni" ] || [ "$STAMP" -nt "$shared/.installed" ]; then
        log "checkout not reachable by user postgres: building $shared for Patroni"
        /usr/bin/python3 -m venv "$shared"
        "$shared/bin/pip" install -q "$(grep -o "patroni\[etcd3\][^\"]*" "$REPO/pyproject.toml")" \
            "$(grep -o "psycopg\[binary\][^\"]*" "$REPO/pyproject.toml")"
        touch "$shared/.installed"
    fi
fi

# --- one Unix group per region of the reference topology ----------------------
# Every process of region R runs under the group DEPLOYMENT-R, so a partition can
# match a region with iptables' owner module. An ordinary user joins the groups
# and starts nodes through sg. `geoha up` creates the groups of other topologies.
user="$(id -un)"
for region in delhi chennai mumbai; do
    group="geoha-$region"
    if ! getent group "$group" >/dev/null; then
        log "creating Unix group $group"
        if [ "$(id -u)" -eq 0 ]; then groupadd --system "$group"; else sudo groupadd --system "$group"; fi
    fi
    if [ "$(id -u)" -ne 0 ] && ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group" \
        && ! getent group "$group" | cut -d: -f4 | tr ',' '\n' | grep -qx "$user"; then
        log "adding $user to $group"
        sudo gpasswd --add "$user" "$group" >/dev/null
    fi
done

# --- web app: npm ci when the lock file changed, vite build when sources did -----
WEB="$REPO/app/web"
if [ -f "$WEB/package.json" ]; then
    if [ ! -d "$WEB/node_modules" ] || [ "$WEB/package-lock.json" -nt "$WEB/node_modules/.package-lock.json" ]; then
        log "installing web app packages (npm ci)"
        (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    newest_source="$(find "$WEB/src" "$WEB/index.html" "$WEB/vite.config.ts" "$WEB/package-lock.json" \
        -newer "$WEB/dist/index.html" -print -quit 2>/dev/null || true)"
    if [ ! -f "$WEB/dist/index.html" ] || [ -n "$newest_source" ]; then
        log "building the web app (vite build)"
        (cd "$WEB" && npm run --silent build >/dev/null)
    else
        log "web app: build up to date"
    fi
fi

log "done"
