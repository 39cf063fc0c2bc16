#!/bin/sh
# Install event-gateway as a systemd service (Debian, as root); `make install` runs this.
#
#   /opt/event-gateway/venv                 its own virtualenv with this checkout installed
#   /opt/event-gateway/share/doc/           operations guide, nginx site, alert rules
#   /etc/event-gateway/gateway.toml         the config (kept if it exists: upgrades never overwrite it)
#   /etc/systemd/system/event-gateway.service
#   user and group event-gateway            (add Core's user to the group for the ipc ingest socket)
#
# Re-running it upgrades in place (new venv contents, new unit); then
# `systemctl restart event-gateway`.  DESTDIR=/some/dir stages everything under
# that directory instead (no user, no systemctl): used to inspect or package the result.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/event-gateway}
PYTHON=${PYTHON:-python3}
USER_NAME=event-gateway

root="$DESTDIR"
venv="$root$PREFIX/venv"

if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (or set DESTDIR to stage the files)" >&2
    exit 1
fi

echo "event-gateway: installing $SRC into $venv"
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "$SRC"

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

if [ -n "$DESTDIR" ]; then
    echo "event-gateway: staged under $DESTDIR"
    exit 0
fi

if ! getent passwd "$USER_NAME" >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/event-gateway --no-create-home \
        --shell /usr/sbin/nologin --comment "event-gateway daemon" "$USER_NAME"
fi
chgrp "$USER_NAME" /etc/event-gateway /etc/event-gateway/gateway.toml

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "event-gateway: installed. Start it: systemctl enable --now event-gateway"
    echo "               after an upgrade:   systemctl restart event-gateway"
else
    echo "event-gateway: installed (systemd is not running here; start it on the target host)"
fi
