"""Every process can use a Redis that asks for credentials: a password (`requirepass`), one
least-privilege ACL user per process kind (exactly the README's ACL block), or TLS."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from redis.exceptions import AuthenticationError, NoPermissionError

from app.adapters.embedded_redis import free_port, port_open, server_binary
from tests.support.api_client import (
    ALL_WORKERS,
    WORKER_MODULES,
    Storefront,
    base_env,
    running_storefront,
    start_web,
    stop_together,
)
from tests.support.polling import eventually_sync
from tests.support.processes import ROOT, ProcessGroup
from tests.support.redis_server import RedisServer, running_redis
from tests.support.scenarios import dead_letter_round_trip, end_to_end, rebuild_and_audit

KINDS = ("web", *ALL_WORKERS)
ACL_LINE = re.compile(r"^ACL SETUSER (storefront-(\w+)) (.*)$", re.MULTILINE)


def readme_acl() -> dict[str, tuple[str, list[str]]]:
    """Process kind → (ACL user, its rules), from the README."""
    found = {
        kind: (user, rules.split())
        for user, kind, rules in ACL_LINE.findall((ROOT / "README.md").read_text())
    }
    assert set(found) == set(KINDS), sorted(found)
    return found


@pytest.fixture
def secret() -> str:
    return secrets.token_urlsafe(18) + "/@:%"  # characters a URL must percent-encode


async def test_the_stack_runs_on_a_redis_that_requires_a_password(
    tmp_path: Path, secret: str
) -> None:
    """`requirepass`: every process authenticates from REDIS_URL; an order goes end to end."""
    with running_storefront(tmp_path, workers=ALL_WORKERS, redis_password=secret) as storefront:
        with pytest.raises(AuthenticationError):  # the server really asks for the password
            redis.Redis.from_url(storefront.redis.plain_url).set("k", "v")
        await end_to_end(storefront)
        for proc in storefront.group.procs:
            assert secret not in proc.output(), proc.name


@pytest.fixture
def acl_server(tmp_path: Path, secret: str) -> Iterator[tuple[RedisServer, dict[str, str]]]:
    """A Redis whose default user is the operator's, with the README's users for the app."""
    with running_redis(tmp_path / "redis", password=secret) as server:
        operator = redis.Redis.from_url(server.url, decode_responses=True)
        urls = {}
        for kind, (user, rules) in readme_acl().items():
            password = secrets.token_urlsafe(18)
            given = [f">{password}" if rule.startswith(">") else rule for rule in rules]
            operator.execute_command("ACL", "SETUSER", user, *given)
            urls[kind] = server.url_for(user, password)
        operator.execute_command("ACL", "LOG", "RESET")
        operator.close()
        yield server, urls


async def test_each_process_kind_runs_as_its_least_privilege_acl_user(
    tmp_path: Path, acl_server: tuple[RedisServer, dict[str, str]]
) -> None:
    """The README's ACL users, one per process kind: the whole stack works and Redis refused
    none of their commands (ACL LOG stays empty)."""
    server, urls = acl_server
    group = ProcessGroup(tmp_path / "logs", base_env(urls["web"]))
    (tmp_path / "logs").mkdir()
    try:
        port = free_port()
        web = start_web(group, port)
        storefront = Storefront(server, group, port, web)
        for kind in ALL_WORKERS:
            storefront.workers[kind] = group.start(
                kind,
                WORKER_MODULES[kind],
                extra_env={"REDIS_URL": urls[kind], "AUDIT_SECONDS": "0.5"},
            )
        await end_to_end(storefront)
        await dead_letter_round_trip(storefront, server.url)
        await rebuild_and_audit(storefront)
    finally:
        stop_together(group)
    operator = redis.Redis.from_url(server.url, decode_responses=True)
    log = operator.execute_command("ACL", "LOG")
    operator.close()
    refused = [entry for entry in log if entry.get("object") != "config|get"]
    assert refused == [], refused  # CONFIG is left out on purpose (see the README)
    for proc in group.procs:
        assert "no permissions" not in proc.output(), (proc.name, proc.output()[-3000:])


def test_a_user_without_the_listed_commands_is_refused(
    acl_server: tuple[RedisServer, dict[str, str]],
) -> None:
    """The users are least-privilege: the web user cannot, for example, flush or read groups."""
    _server, urls = acl_server
    web = redis.Redis.from_url(urls["web"])
    try:
        assert web.ping()
        for command in (("FLUSHALL",), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")):
            with pytest.raises(NoPermissionError):
                web.execute_command(*command)
    finally:
        web.close()


def test_the_readme_acl_names_every_process_kind() -> None:
    acl = readme_acl()
    for kind, (user, rules) in acl.items():
        assert user == f"storefront-{kind}"
        assert "-@all" in rules and "+ping" in rules, (kind, rules)
        assert not any(rule.startswith("+@") for rule in rules), (kind, "categories are wider")


def test_the_embedded_redis_asks_for_the_urls_password(tmp_path: Path, secret: str) -> None:
    """`python -m workers.redis` (the Procfile's `redis`) with a password in REDIS_URL starts a
    server that requires it, and never prints it."""
    port = free_port()
    url = RedisServer(port, tmp_path, None, secret).url  # type: ignore[arg-type]
    group = ProcessGroup(tmp_path, {"REDIS_URL": url, "REDIS_DATA_DIR": str(tmp_path / "data")})
    launcher = group.start("redis", "workers.redis")
    try:
        client = redis.Redis.from_url(url)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        eventually_sync(answers, timeout=30, message="embedded redis up")
        client.close()
        with pytest.raises(AuthenticationError):
            redis.Redis(port=port).set("k", "v")
    finally:
        launcher.stop()
    assert launcher.popen.returncode == 0, launcher.output()
    assert secret not in launcher.output()


def test_the_embedded_redis_never_starts_for_a_tls_url(tmp_path: Path) -> None:
    """`rediss://` means a server of its own (the embedded one does not do TLS)."""
    port = free_port()
    group = ProcessGroup(tmp_path, {"REDIS_URL": f"rediss://:pw@127.0.0.1:{port}/0"})
    launcher = group.start("redis", "workers.redis")
    try:
        eventually_sync(
            lambda: "using the server already at" in launcher.output(),
            timeout=30,
            message="launcher says it uses another server",
        )
        assert not port_open(port)
    finally:
        launcher.stop()


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl on PATH)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl on PATH to make a TLS certificate")
    files = {name: directory / f"tls-{name}" for name in ("ca.key", "ca.crt", "key", "csr", "crt")}
    ca_key, ca, key, csr, crt = (str(path) for path in files.values())
    extensions = directory / "tls-ext.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
         "-keyout", ca_key, "-out", ca],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key,
         "-out", csr],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
         "-out", crt, "-extfile", str(extensions)],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(["openssl", *step], check=True, capture_output=True, timeout=60)
    return files


@pytest.fixture
def tls_server(tmp_path: Path, secret: str) -> Iterator[tuple[RedisServer, str]]:
    """A Redis that speaks TLS only (and asks for a password): its rediss:// URL."""
    certificates = make_certificates(tmp_path)
    port = free_port()
    tls = {
        "--port": "0",
        "--tls-port": str(port),
        "--bind": "127.0.0.1",
        "--tls-cert-file": str(certificates["crt"]),
        "--tls-key-file": str(certificates["key"]),
        "--tls-ca-cert-file": str(certificates["ca.crt"]),
        "--tls-auth-clients": "no",
        "--requirepass": secret,
        "--save": "",
        "--appendonly": "no",
        "--dir": str(tmp_path),
    }
    log = tmp_path / "tls-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [server_binary(), *(part for pair in tls.items() for part in pair)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = RedisServer(port, tmp_path, process, secret)
    try:
        eventually_sync(
            lambda: port_open(port) or process.poll() is not None,
            timeout=20,
            message="TLS redis listening",
        )
        if process.poll() is not None:
            said = log.read_text(errors="replace")
            if "connection type tls" in said:  # e.g. "Missing implement of connection type tls"
                pytest.skip(f"{server_binary()} was built without TLS")
            raise AssertionError(f"the TLS server exited: {said[-2000:]}")
        ca = quote(str(certificates["ca.crt"]), safe="")
        yield server, f"rediss://:{quote(secret, safe='')}@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    finally:
        server.stop()


async def test_the_stack_runs_on_a_redis_over_tls(
    tmp_path: Path, tls_server: tuple[RedisServer, str]
) -> None:
    """`rediss://` (with the CA in the URL): every process talks TLS; an order goes through."""
    server, url = tls_server
    with pytest.raises(redis.ConnectionError):  # plain text is not spoken there
        redis.Redis(port=server.port, password=server.password, socket_timeout=5).ping()
    (tmp_path / "logs").mkdir()
    group = ProcessGroup(tmp_path / "logs", base_env(url))
    try:
        port = free_port()
        storefront = Storefront(server, group, port, start_web(group, port))
        storefront.start_workers(ALL_WORKERS)
        await end_to_end(storefront)
    finally:
        stop_together(group)
