"""Redis over TLS with an ACL user: Debian's redis-server started by the test, for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.runtime.connections import UnreachableError, require_redis
from streams.settings import Settings, load_settings
from streams.state.checkpoint import CheckpointStore
from streams.state.hotview import HotView
from streams.state.pending_redis import RedisPendingStore

from .tls import Certificates, make_certificates, tls_redis

pytestmark = pytest.mark.integration

USER, PASSWORD = "driftline", "s3cret-pw"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("redis-certs"))


@pytest.fixture(scope="module")
def redis_port(certs: Certificates, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[int]:
    with tls_redis(certs, tmp_path_factory.mktemp("redis-tls"), USER, PASSWORD) as port:
        yield port


def secured(port: int, certs: Certificates, tmp_path: Path, password: str = PASSWORD,
            ca: Path | None = None) -> dict[str, str]:
    secret = tmp_path / "redis-password"
    secret.write_text(password + "\n", encoding="utf-8")
    return {"DRIFTLINE_REDIS_URL": f"rediss://127.0.0.1:{port}/0",
            "DRIFTLINE_REDIS_USERNAME": USER, "DRIFTLINE_REDIS_PASSWORD_FILE": str(secret),
            "DRIFTLINE_REDIS_CA_FILE": str(ca or certs.ca)}


def test_the_stores_work_over_tls_as_an_acl_user(redis_port: int, certs: Certificates,
                                                 tmp_path: Path) -> None:
    settings = load_settings(environ=secured(redis_port, certs, tmp_path))
    require_redis(settings.redis_url, security=settings.redis)
    store = CheckpointStore(settings.redis_url, "tls-group", settings.redis)
    store.save("predictions", 0, {"predictions": 42}, {"models": {}})
    loaded = CheckpointStore(settings.redis_url, "tls-group", settings.redis).load(
        "predictions", 0)
    assert loaded is not None and loaded.offsets == {"predictions": 42}
    assert HotView(settings.redis_url, "tls-group", security=settings.redis).labels() == {}
    RedisPendingStore(settings.redis_url, "tls-group", security=settings.redis).flush()


def test_a_wrong_password_is_a_clear_start_up_error(redis_port: int, certs: Certificates,
                                                    tmp_path: Path,
                                                    settings: Settings) -> None:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("DRIFTLINE_")}
    env |= secured(redis_port, certs, tmp_path, password="wrong")
    env["DRIFTLINE_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    done = subprocess.run([sys.executable, "-m", "streams.ui.cli", "worker"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "wrong" not in done.stderr, done.stderr
    first, hint = done.stderr.splitlines()
    assert first == (f"driftline: error: Redis at rediss://127.0.0.1:{redis_port}/0 refused "
                     "driftline's credentials (invalid username-password pair or user is "
                     "disabled.)")
    assert "DRIFTLINE_REDIS_PASSWORD_FILE" in hint


def test_an_unknown_ca_is_a_clear_tls_error(redis_port: int, certs: Certificates,
                                            tmp_path: Path) -> None:
    settings = load_settings(environ=secured(redis_port, certs, tmp_path, ca=certs.other_ca))
    with pytest.raises(UnreachableError) as caught:
        require_redis(settings.redis_url, security=settings.redis)
    message = str(caught.value)
    assert "TLS failed" in message and "certificate verify failed" in message, message
    assert "redis.ca_file" in message


def test_plaintext_to_a_tls_port_fails_rather_than_hangs(redis_port: int) -> None:
    with pytest.raises(UnreachableError):
        require_redis(f"redis://{USER}:{PASSWORD}@127.0.0.1:{redis_port}/0", timeout_s=2.0)
