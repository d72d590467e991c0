"""TLS to Redis: ``rediss://`` URLs with server verification and client certificates.

Each test talks to a real redis-server listening only on a TLS port, with certificates
this module makes (see ``certs.py``). The ``ssl_*`` URL parameters tested here are the ones
``docs/guides/security.md`` documents.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
import trio

from stem import JobState, Stem
from stem.broker import Delivery
from stem.embedded import free_port
from stem.errors import BrokerRefused
from stem.worker.core import Worker, WorkerOptions
from tests.security.certs import Pki, make_pki
from tests.security.servers import answers, run_stem, start_redis


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls_server(pki: Pki, cert: Path, key: Path, auth_clients: str) -> Iterator[str]:
    port = free_port()
    args = ["--port", "0", "--bind", "127.0.0.1", "--tls-port", str(port), "--save", ""]
    args += ["--appendonly", "no", "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    args += ["--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", auth_clients]
    base = f"rediss://127.0.0.1:{port}/0"

    def client() -> redis.Redis:
        return redis.Redis.from_url(
            f"{base}?ssl_cert_reqs=none&ssl_certfile={pki.client_cert}&ssl_keyfile={pki.client_key}"
        )

    with start_redis(args, answers(client)):
        yield base


@pytest.fixture(scope="module")
def tls_url(pki: Pki) -> Iterator[str]:
    """A TLS-only server that does not ask clients for a certificate (``optional``)."""
    yield from _tls_server(pki, pki.server_cert, pki.server_key, "optional")


@pytest.fixture(scope="module")
def mtls_url(pki: Pki) -> Iterator[str]:
    """A TLS-only server that requires a client certificate signed by the CA."""
    yield from _tls_server(pki, pki.server_cert, pki.server_key, "yes")


@pytest.fixture(scope="module")
def misnamed_url(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A TLS server whose certificate (signed by the CA) names another host only."""
    other = make_pki(tmp_path_factory.mktemp("pki-other"), server_names="DNS:stem.invalid")
    # Same CA as the others would be nicer, but the check under test is the name alone:
    # verify against this PKI's own CA.
    for url in _tls_server(other, other.server_cert, other.server_key, "optional"):
        yield f"{url}?ssl_ca_certs={quote(str(other.ca))}"


_ADD = "tests.apps.jobs.add"


def _drain_with_a_worker(url: str, namespace: str) -> None:
    """Enqueue through ``url``, run a real burst worker on it, read the result back."""
    app = Stem(url, namespace=namespace)
    try:
        job = app.enqueue("tests.apps.jobs.add", [20, 22])
        done = run_stem("--redis-url", url, "--namespace", namespace, "worker",
                        "--app", "tests.apps.jobs:app", "--burst")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "error" not in done.stderr.lower()
        assert job.result(timeout_s=10) == 42
        assert job.status() is JobState.SUCCEEDED
    finally:
        app.close()


def test_a_worker_runs_jobs_over_tls_with_the_server_verified(
    tls_url: str, pki: Pki, namespace: str
) -> None:
    _drain_with_a_worker(f"{tls_url}?ssl_ca_certs={pki.ca}", namespace)


def test_a_worker_runs_jobs_over_mutual_tls_with_a_client_certificate(
    mtls_url: str, pki: Pki, namespace: str
) -> None:
    query = f"ssl_ca_certs={pki.ca}&ssl_certfile={pki.client_cert}&ssl_keyfile={pki.client_key}"
    _drain_with_a_worker(f"{mtls_url}?{query}&ssl_cert_reqs=required", namespace)


def test_a_wait_over_tls_reads_a_fetch_reply_many_tls_records_long(
    tls_url: str, pki: Pki, namespace: str
) -> None:
    # The worker reads a wait's replies from the TLS socket without blocking: a job of
    # 300 KB arrives in many 16 KB records, some read before the rest are there.
    app = Stem(f"{tls_url}?ssl_ca_certs={pki.ca}", namespace=namespace)
    try:
        assert app.broker.fetch("default", "w", 10) == []
        big = "x" * 300_000
        landed: list[str] = []
        enqueuer = threading.Timer(0.2, lambda: landed.append(app.enqueue(_ADD, [big, ""]).id))
        enqueuer.start()
        got = app.broker.wait_and_fetch("default", "w", 10, timeout_ms=30_000)
        enqueuer.join()
        assert got is not None and [d.job_id for d in got] == landed
        assert got[0].envelope is not None and big.encode() in got[0].envelope
    finally:
        app.close()


async def test_a_worker_reads_its_wait_on_the_trio_thread_over_tls(
    tls_url: str, pki: Pki, namespace: str
) -> None:
    app = Stem(f"{tls_url}?ssl_ca_certs={pki.ca}", namespace=namespace)
    worker = Worker(app, WorkerOptions(queues=("default",), name="tls-waiter"))
    try:
        assert await worker._call(worker._fetch, 10) == []
        big = "x" * 300_000
        got: list[list[Delivery] | None] = []

        async def wait() -> None:
            got.append(await worker._wait_here_then_fetch(30_000, 10))

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                while not app.broker._waiting:  # blocked in Redis
                    await trio.sleep(0.01)
                job = await trio.to_thread.run_sync(app.enqueue, _ADD, [big, ""])
        [delivered] = got
        assert delivered is not None and [d.job_id for d in delivered] == [job.id]
        assert delivered[0].envelope is not None and big.encode() in delivered[0].envelope
    finally:
        worker.lease.stop()
        app.close()


def test_a_server_that_requires_a_client_certificate_refuses_a_client_without_one(
    mtls_url: str, pki: Pki
) -> None:
    # With TLS 1.3 the server's refusal arrives as a closed connection after the handshake,
    # indistinguishable from a network failure: exit 3 as "cannot reach", not "refused".
    done = run_stem("--redis-url", f"{mtls_url}?ssl_ca_certs={pki.ca}", "observe", "queues")
    assert done.returncode == 3
    [line] = done.stderr.splitlines()
    assert line.startswith(f"stem: error: cannot reach Redis at {mtls_url}?ssl_ca_certs="), line


def test_a_wrong_ca_is_one_line_and_exit_3_from_the_cli(tls_url: str, pki: Pki) -> None:
    url = f"{tls_url}?ssl_ca_certs={pki.wrong_ca}"
    done = run_stem("--redis-url", url, "observe", "queues")
    assert (done.returncode, done.stdout) == (3, "")
    [line] = done.stderr.splitlines()
    assert line == (
        f"stem: error: Redis at {url} failed TLS verification: self-signed certificate in "
        "certificate chain (check ssl_ca_certs, and that the server certificate names this host)"
        " (from --redis-url)"
    )


def test_a_wrong_ca_is_a_broker_refused_from_the_python_api(tls_url: str, pki: Pki) -> None:
    app = Stem(f"{tls_url}?ssl_ca_certs={pki.wrong_ca}", namespace="tls")
    try:
        with pytest.raises(BrokerRefused, match="failed TLS verification: self-signed"):
            app.enqueue("t")
    finally:
        app.close()


def test_a_server_certificate_for_another_host_is_refused(misnamed_url: str) -> None:
    app = Stem(misnamed_url, namespace="tls")
    try:
        with pytest.raises(BrokerRefused, match="failed TLS verification: IP address mismatch"):
            app.enqueue("t")
    finally:
        app.close()


def test_ssl_check_hostname_false_accepts_a_certificate_for_another_host(
    misnamed_url: str, namespace: str
) -> None:
    _drain_with_a_worker(f"{misnamed_url}&ssl_check_hostname=false", namespace)


def test_ssl_cert_reqs_none_skips_verification(tls_url: str, namespace: str) -> None:
    # Documented as for throwaway setups only: the connection is encrypted, not authenticated.
    app = Stem(f"{tls_url}?ssl_cert_reqs=none", namespace=namespace)
    try:
        assert app.enqueue("t").status() is JobState.QUEUED
    finally:
        app.close()


def test_a_misspelt_ssl_parameter_is_a_config_error_naming_it(tls_url: str, pki: Pki) -> None:
    done = run_stem("--redis-url", f"{tls_url}?ssl_ca_cert={pki.ca}", "observe", "queues")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "unknown parameter 'ssl_ca_cert'" in line
