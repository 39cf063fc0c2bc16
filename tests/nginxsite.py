"""Test helper: Debian's nginx running the deploy kit's site (``deploy/nginx/event-gateway.conf``) on loopback.

The site runs inside a generated wrapper config; only the listen ports, the
upstream and the certificate paths are rewritten (each rewrite must match the
site exactly once, so the tests follow the file).  A self-signed certificate is
made with openssl.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

from tests.conftest import ROOT, free_port, wait_for

SITE = ROOT / "deploy" / "nginx" / "event-gateway.conf"


def rewrite(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not in the site exactly once"
    return text.replace(old, new)


class Nginx:
    """``nginx`` running the site on loopback ports (killed by :meth:`stop`).

    ``upstream``: an ``upstream event_gateway { … }`` block that replaces the site's (the
    cluster's, ``deploy/cluster/nginx-upstream.conf``, with its servers rewritten);
    otherwise the site's one server is rewritten to ``127.0.0.1:gateway_port``.
    """

    def __init__(self, base: Path, gateway_port: int = 0, upstream: str | None = None) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.https_port = free_port()
        self.http_port = free_port()
        self.cert = base / "cert.pem"
        key = base / "key.pem"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
                *("-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
                *("-keyout", str(key), "-out", str(self.cert)),
            ],
            check=True,
            capture_output=True,
        )
        site = SITE.read_text()
        if upstream is None:
            site = rewrite(site, "server 127.0.0.1:8765;", f"server 127.0.0.1:{gateway_port};")
        else:
            start = site.index("upstream event_gateway {")
            site = site[:start] + upstream + site[site.index("}", start) + 1 :]
        site = rewrite(site, "    listen 80;\n", f"    listen 127.0.0.1:{self.http_port};\n")
        site = rewrite(site, "    listen [::]:80;\n", "")
        site = rewrite(site, "    listen 443 ssl;\n", f"    listen 127.0.0.1:{self.https_port} ssl;\n")
        site = rewrite(site, "    listen [::]:443 ssl;\n", "")
        site = rewrite(site, "/etc/ssl/certs/event-gateway.pem", str(self.cert))
        site = rewrite(site, "/etc/ssl/private/event-gateway.key", str(key))
        self.access_log = base / "site-access.log"
        site = rewrite(site, "/var/log/nginx/event-gateway.access.log", str(self.access_log))
        (base / "site.conf").write_text(site)
        temp = "\n".join(
            f"    {kind}_temp_path {base}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (base / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {base}/nginx.pid;\nerror_log {base}/error.log info;\n"
            + "events { worker_connections 128; }\n"
            + f"http {{\n    access_log {base}/access.log;\n{temp}\n    include {base}/site.conf;\n}}\n"
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.path.exists(nginx), "nginx missing: `make test` installs Debian's nginx package"
        self.command = [nginx, "-p", str(base), "-e", str(base / "error.log"), "-c", str(base / "nginx.conf")]
        checked = subprocess.run([*self.command, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.accepting, 15, "nginx listening")

    def accepting(self) -> bool:
        assert self.proc.poll() is None, (self.base / "error.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
            return True
        except OSError:
            return False

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
