"""nginx for the topology test: the shipped site file deploy/nginx/huihua.conf, with only its
ports, upstream addresses and file paths substituted, inside a minimal nginx.conf of our own
(non-daemon, its own pid file, logs and temp paths in a tmp dir), and a self-signed certificate.

Each substitution must match exactly once: if the example changes shape, the test fails instead
of quietly testing something else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from servicekit import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "huihua.conf"
NGINX = "/usr/sbin/nginx"
PROXY_ADDRESS = "127.0.0.2"  # where huihua sees nginx come from (HUIHUA_TRUST_PROXY)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (its own CA), and its key."""
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def site_config(
    *, https_port: int, http_port: int, upstreams: list[int], cert: Path, key: Path, logs: Path
) -> str:
    text = SITE.read_text()
    first, second = upstreams
    swaps = {
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "server 10.0.0.11:8600 ": f"server 127.0.0.1:{first} ",
        "server 10.0.0.12:8600 ": f"server 127.0.0.1:{second} ",
        "/etc/ssl/huihua/fullchain.pem": str(cert),
        "/etc/ssl/huihua/privkey.pem": str(key),
        "/var/log/nginx/huihua.access.log": str(logs / "access.log"),
        "/var/log/nginx/huihua.error.log": str(logs / "error.log"),
        # On one machine the browser and nginx would both be 127.0.0.1, and a client at a trusted
        # proxy's address is rightly walked past. In production they are different machines; here
        # nginx talks to huihua from its own loopback address, the one HUIHUA_TRUST_PROXY names.
        "proxy_pass http://huihua;": f"proxy_pass http://huihua;\n        proxy_bind {PROXY_ADDRESS};",
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, f"deploy/nginx/huihua.conf no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


def main_config(folder: Path, site: Path) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # as root the workers would switch to `nobody`, who cannot enter pytest's 0700 tmp dirs
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'nginx-error.log'} info;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log {folder / 'nginx-access.log'};\n{temp}\n    include {site};\n}}\n"
    )


class Nginx:
    """nginx in the foreground on two free loopback ports (HTTPS and the plain-HTTP redirect)."""

    def __init__(self, folder: Path, upstreams: list[int]) -> None:
        if shutil.which(NGINX) is None:
            raise RuntimeError(f"{NGINX} is missing: run scripts/install-nginx")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.cert, key = self_signed(folder)
        self.https_port, self.http_port = free_port(), free_port()
        site = folder / "huihua.conf"
        site.write_text(site_config(https_port=self.https_port, http_port=self.http_port, upstreams=upstreams,
                                    cert=self.cert, key=key, logs=folder))  # fmt: skip
        self.conf = folder / "nginx.conf"
        self.conf.write_text(main_config(folder, site))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def start(self) -> Nginx:
        command = [
            NGINX,
            "-p",
            str(self.folder),
            "-e",
            str(self.folder / "nginx-error.log"),
            "-c",
            str(self.conf),
        ]
        check = subprocess.run([*command, "-t"], check=False, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self._log = (self.folder / "nginx-stderr.log").open("ab")
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for_port(self.https_port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # the master, by its pid: it stops its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if hasattr(self, "_log"):
            self._log.close()

    def error_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.folder.glob("*error.log"))
