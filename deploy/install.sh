#!/bin/sh
# Install event-gateway as a systemd service (Debian, as root); `make install` runs this.
#
#   /opt/event-gateway/venv                 its own virtualenv with this checkout installed
#   /opt/event-gateway/share/doc/           operations guide, nginx site, alert rules
#   /etc/event-gateway/gateway.toml         the config (kept if it exists: upgrades never overwrite it)
#   /etc/systemd/system/event-gateway.service
#   user and group event-gateway            (add Core's user to the group for the ipc ingest socket)
#
# The venv is built with the distribution's interpreter (/usr/bin/python3; python3-venv is
# installed with apt if missing), never with whatever python3 is first on root's PATH: a
# pyenv/asdf/conda/hand-built Python under /root or /home is a directory the service user
# cannot enter.  PYTHON=/path/to/python3 overrides that choice.  At the end the installed
# `gatewayd --version` is run as the service user; if it cannot run, the install fails here
# with one line saying why, not at boot.
#
# Re-running it upgrades in place (new venv contents, new unit); then
# `systemctl restart event-gateway`.  Variables:
#   DESTDIR=/some/dir   stage everything under that directory (no user, no systemctl; the
#                       check runs as SERVICE_USER if it exists, else as nobody)
#   PREFIX=/opt/event-gateway   where the venv and the docs go
#   PYTHON=/usr/bin/python3     the interpreter the venv is built from
#   SERVICE_USER=event-gateway SERVICE_GROUP=$SERVICE_USER   who runs it (names or numeric ids)
set -eu
umask 022 # the venv must be readable by the service user whatever root's umask is

SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/event-gateway}
SERVICE_USER=${SERVICE_USER:-event-gateway}
SERVICE_GROUP=${SERVICE_GROUP:-$SERVICE_USER}

root="$DESTDIR"
venv="$root$PREFIX/venv"

fail() {
    echo "install.sh: $*" >&2
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    [ -n "$DESTDIR" ] || fail "run as root (or set DESTDIR to stage the files)"
fi

# ---- the interpreter ---------------------------------------------------------------------
if [ -n "${PYTHON:-}" ]; then
    python=$PYTHON
elif [ -x /usr/bin/python3 ]; then
    python=/usr/bin/python3
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "event-gateway: installing python3-venv (Debian package) for $python"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        else
            fail "$python has no venv module: install python3-venv (apt-get install python3-venv) or set PYTHON"
        fi
    fi
else
    python=python3
    echo "event-gateway: no /usr/bin/python3; using $(command -v python3 || echo python3) from PATH" >&2
fi
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || fail "$python is not Python >= 3.11: set PYTHON to one every user can read (not under /root)"

# ---- who runs it: the service user, or nobody where it does not exist (DESTDIR) ----------
known() { case $1 in *[!0-9]*) getent passwd "$1" >/dev/null ;; *) true ;; esac; }
check_user=$SERVICE_USER check_group=$SERVICE_GROUP
if [ "$(id -u)" -ne 0 ]; then
    check_user=$(id -un) # only root can switch users
elif ! known "$check_user"; then
    check_user=nobody check_group=nogroup
fi
# Runs "$@" as that user or fails the install with one line.
run_as_service() {
    program=$1
    if [ "$(id -u)" -eq 0 ]; then
        set -- setpriv --reuid="$check_user" --regid="$check_group" --clear-groups -- env -i PATH=/usr/bin:/bin "$@"
    fi
    out=$("$@" 2>&1) || fail "user $check_user cannot run $program built with $python ($(echo "$out" | tail -n 1)):" \
        "rerun with an interpreter outside /root and /home, e.g. PYTHON=/usr/bin/python3 make install (apt-get install python3-venv)"
}

# ---- the files ---------------------------------------------------------------------------
echo "event-gateway: installing $SRC into $venv with $python"
"$python" -m venv --clear "$venv"
run_as_service "$venv/bin/python3" -c '' # before spending time on pip
"$venv/bin/python" -m pip install --quiet "$SRC"

install -d -m 0755 "$root$PREFIX/share/doc"
install -m 0644 "$SRC/docs/operations.md" "$SRC/deploy/alerts.yml" "$SRC/deploy/nginx/event-gateway.conf" \
    "$SRC/deploy/gateway.toml" "$root$PREFIX/share/doc/"

install -d -m 0755 "$root/etc/systemd/system"
install -m 0644 "$SRC/systemd/event-gateway.service" "$root/etc/systemd/system/event-gateway.service"

install -d -m 0750 "$root/etc/event-gateway"
if [ -e "$root/etc/event-gateway/gateway.toml" ]; then
    echo "event-gateway: keeping /etc/event-gateway/gateway.toml (the new defaults are in $PREFIX/share/doc/gateway.toml)"
else
    install -m 0640 "$SRC/deploy/gateway.toml" "$root/etc/event-gateway/gateway.toml"
fi

if [ -z "$DESTDIR" ] && ! getent passwd "$SERVICE_USER" >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/event-gateway --no-create-home \
        --shell /usr/sbin/nologin --comment "event-gateway daemon" "$SERVICE_USER"
fi
if [ -z "$DESTDIR" ]; then
    chgrp "$SERVICE_GROUP" /etc/event-gateway /etc/event-gateway/gateway.toml
fi

# ---- the check: the service user runs the installed gatewayd ------------------------------
run_as_service "$venv/bin/gatewayd" --version
echo "event-gateway: $out runs as user $check_user"

if [ -n "$DESTDIR" ]; then
    echo "event-gateway: staged under $DESTDIR"
    exit 0
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "event-gateway: installed. Start it: systemctl enable --now event-gateway"
    echo "               after an upgrade:   systemctl restart event-gateway"
else
    echo "event-gateway: installed (systemd is not running here; start it on the target host)"
fi
