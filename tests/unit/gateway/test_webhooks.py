"""Completion webhooks without the stack: destinations refused or allowed (SSRF guard), the
secrets settings, and deliveries to a real local receiver from a real SQLite record store with
an injected clock (backoff without waiting): retries, exactly one success, the bounded time,
connection refused, and a delivery taken over after a restart."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from ponder.workflow.v1 import workflow_service_pb2 as pb
from ponder_gateway.redis_state import RedisWorkflowStore
from ponder_gateway.settings import GatewaySettings
from ponder_gateway.store import SqliteWorkflowStore, WorkflowStore
from ponder_gateway.webhooks.delivery import Deliverer, RetryPolicy
from ponder_gateway.webhooks.destinations import (
    DestinationPolicy,
    RefusedDestination,
    UnresolvedDestination,
)
from ponder_gateway.webhooks.notifier import Notifier
from ponder_gateway.webhooks.secrets import WebhookSecrets, parse_secrets
from ponder_gateway.webhooks.sender import HttpxSender
from ponder_gateway.webhooks.signing import signature_header
from ponder_gateway.webhooks.state import mark_ended
from ponder_rest.codec import JsonOptions
from ponder_runtime import SettingsError, load_settings
from tests.webhook_receiver import Receiver


SECRET = "whsec-0123456789abcdef"


async def _refusal(policy: DestinationPolicy, url: str) -> str:
    """Why `url` is refused ("" when it is allowed)."""
    try:
        await policy.addresses(policy.parse(url))
    except RefusedDestination as exc:
        return str(exc)
    return ""


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",  # loopback
        "http://169.254.169.254/latest/meta-data/",  # link-local (cloud metadata)
        "http://10.1.2.3/hook",  # private
        "http://192.168.0.10/hook",  # private
        "http://100.64.0.1/hook",  # shared address space
        "http://[::1]:9000/hook",  # IPv6 loopback
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "http://[fe80::1]/hook",  # IPv6 link-local
        "http://0.0.0.0/hook",  # unspecified
        "http://224.0.0.251/hook",  # multicast
        "http://localhost:8080/hook",  # a name resolving to loopback
    ],
)
async def test_non_public_destinations_are_refused(url: str) -> None:
    """With the default policy (any host, no network allowed), every loopback, link-local,
    private, shared, multicast or unspecified destination is refused, also by name."""
    reason = await _refusal(DestinationPolicy(hosts=["*"], networks=[]), url)
    assert "non-public address" in reason


async def test_allowed_networks_hosts_and_url_forms() -> None:
    """A network allows its addresses only; a host allowlist refuses other hosts; a public
    address passes; bad URL forms and a turned-off policy are refused with the reason; a name
    that does not resolve (or not within RESOLVE_SECONDS) is refused as unresolved."""
    loopback = DestinationPolicy(hosts=["*"], networks=["127.0.0.1/32"])
    assert await _refusal(loopback, "http://127.0.0.1:9/x") == ""
    assert "non-public" in await _refusal(loopback, "http://127.0.0.2:9/x")
    assert "non-public" in await _refusal(loopback, "http://[::1]:9/x")
    public = DestinationPolicy(hosts=["*"], networks=[])
    assert await _refusal(public, "https://93.184.216.34/") == ""
    only = DestinationPolicy(hosts=["hooks.example.com", "*.corp.example"], networks=[])
    assert "not an allowed webhook destination" in await _refusal(only, "https://evil.test/")
    assert "not an allowed webhook destination" in await _refusal(only, "https://1.1.1.1/")
    assert only.parse("https://a.corp.example/x").host == "a.corp.example"
    cidr = DestinationPolicy(hosts=["127.0.0.0/8"], networks=["127.0.0.0/8"])
    assert await _refusal(cidr, "http://127.0.0.5/") == ""
    assert "not an allowed" in await _refusal(cidr, "http://93.184.216.34/")
    anything = DestinationPolicy(hosts=["*"], networks=[])
    assert "http or https" in await _refusal(anything, "ftp://93.184.216.34/")
    assert "user info" in await _refusal(anything, "https://u:p@93.184.216.34/")
    assert "name a host" in await _refusal(anything, "https:///path")
    assert "turned off" in await _refusal(DestinationPolicy(hosts=[], networks=[]), "https://a/")
    with pytest.raises(ValueError, match="not a CIDR"):
        DestinationPolicy(hosts=["*"], networks=["10.0.0.0/33"])

    async def unanswered(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()  # a resolver that never answers
        return []

    async def unknown(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    for resolver, reason in ((unanswered, "did not resolve within"), (unknown, "not known")):
        policy = DestinationPolicy(
            hosts=["*"], networks=[], resolver=resolver, resolve_seconds=0.05
        )
        with pytest.raises(UnresolvedDestination, match=reason):
            await policy.addresses(policy.parse("https://hooks.test/"))


def test_secrets_settings_are_checked_at_start(tmp_path: Path) -> None:
    """Short secrets, bad names and unreadable files stop the start-up naming the secret
    (never its value); tenant-scoped names serve their tenant only."""
    with pytest.raises(SettingsError, match="shorter than 16") as error:
        load_settings(GatewaySettings, webhook_secrets={"hooks": "short-secret"})
    assert "short-secret" not in str(error.value)
    bad = tmp_path / "secrets.json"
    bad.write_text("{nope")
    with pytest.raises(SettingsError, match="not JSON"):
        load_settings(GatewaySettings, webhook_secrets_file=bad)
    with pytest.raises(SettingsError, match="not a CIDR"):
        load_settings(GatewaySettings, webhook_allowed_networks=["10.0.0.0/99"])
    secrets = WebhookSecrets(parse_secrets({"acme:hooks": SECRET, "shared": [SECRET, SECRET]}))
    assert secrets.lookup("hooks", "acme") == (SECRET.encode(),)
    assert secrets.lookup("hooks", "other") is None
    assert secrets.lookup("acme:hooks", "other") is None  # no reaching into a tenant
    assert secrets.lookup("shared", "other") == (SECRET.encode(), SECRET.encode())


class FakeTime:
    """The injected clock: sleeping advances it at once (and records the waits)."""

    def __init__(self) -> None:
        # starts now, when the test's workflows end: the receiver checks the age of signatures
        # against its real clock (a start taken at collection is minutes old in a full run)
        self.start = self.now = float(int(time.time()))
        self.waits: list[float] = []

    def clock(self) -> float:
        """Seconds since the epoch, as the fake has it."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Advance the clock; let other tasks run."""
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteWorkflowStore]:
    """A real SQLite record store."""
    records = SqliteWorkflowStore(tmp_path / "workflows.sqlite3")
    yield records
    await records.close()


async def _ended(
    store: WorkflowStore, url: str, name: str = "workflows/hooked", *, at: float | None = None
) -> str:
    """Save a SUCCEEDED workflow whose webhook to `url` is due (as the recorder leaves it),
    ended `at` (the test's fake clock, so its first attempt is due at once; else now)."""
    workflow = pb.Workflow(
        name=name, id=name.split("/")[1], kind=pb.WORKFLOW_KIND_RESEARCH, topic="webhooks"
    )
    workflow.state = pb.WORKFLOW_STATE_SUCCEEDED
    workflow.result.text = "done [1]"
    workflow.notification.url = url
    workflow.notification.secret_name = "hooks"
    ended = int(time.time() if at is None else at)
    workflow.create_time.FromSeconds(ended - 5)
    workflow.end_time.FromSeconds(ended)
    workflow.update_time.CopyFrom(workflow.end_time)
    mark_ended(workflow, workflow.end_time)
    await store.save(workflow)
    return name


def _deliverer(
    store: WorkflowStore,
    fake: FakeTime,
    sender: HttpxSender,
    *,
    policy: DestinationPolicy | None = None,
    meter: Meter | None = None,
    tracer: Tracer | None = None,
    **retry: float,
) -> Deliverer:
    return Deliverer(
        store,
        policy or DestinationPolicy(hosts=["*"], networks=["127.0.0.1/32"]),
        WebhookSecrets(parse_secrets({"hooks": SECRET})),
        sender,
        retry=RetryPolicy(**{"initial_seconds": 1.0, "total_seconds": 3600.0, **retry}),
        json=JsonOptions(),
        clock=fake.clock,
        sleep=fake.sleep,
        jitter=lambda: 0.0,
        meter=meter,
        tracer=tracer,
    )


async def test_retried_until_delivered_exactly_once(store: SqliteWorkflowStore) -> None:
    """Three 500s, then success: four signed POSTs with the same event id and body, waits
    doubling (0.5, 1, 2 s with no jitter), the record DELIVERED after 4 attempts; delivering
    again sends nothing (no duplicate after success)."""
    receiver = Receiver(SECRET, fail_first=3).start()
    fake, sender = FakeTime(), HttpxSender()
    readings, spans = InMemoryMetricReader(), InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    meter = MeterProvider(metric_readers=[readings]).get_meter("test")
    try:
        name = await _ended(store, receiver.url, at=fake.start)
        deliverer = _deliverer(store, fake, sender, meter=meter, tracer=tracing.get_tracer("t"))
        await deliverer.deliver(name)
        await deliverer.deliver(name)
    finally:
        receiver.close()
        await sender.close()
    assert [d.status for d in receiver.deliveries] == [500, 500, 500, 204]
    assert all(d.verified for d in receiver.deliveries)
    assert len({d.headers["Ponder-Event-Id"] for d in receiver.deliveries}) == 1
    assert len({d.body for d in receiver.deliveries}) == 1
    assert [d.headers["Ponder-Delivery-Attempt"] for d in receiver.deliveries] == list("1234")
    assert receiver.deliveries[0].headers["Ponder-Event-Type"] == "workflow.succeeded"
    sent = receiver.deliveries[0].json["workflow"]
    assert sent["name"] == name
    assert sent["result"]["text"] == "done [1]"
    assert "notificationDelivery" not in sent
    assert fake.waits == [0.5, 1.0, 2.0]
    record = await store.get(name)
    assert record is not None
    delivery = record.notification_delivery
    assert delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (4, 204, "")
    assert delivery.deliver_time.ToSeconds() == int(fake.start + 3.5)
    attempts = [span for span in spans.get_finished_spans() if span.name == "webhook deliver"]
    assert [dict(span.attributes or {})["ponder.webhook.outcome"] for span in attempts] == [
        *["http_error"] * 3,
        "delivered",
    ]
    assert dict(attempts[-1].attributes or {})["http.response.status_code"] == 204
    assert _counts(readings) == {
        ("ponder.webhook.attempts", "http_error"): 3,
        ("ponder.webhook.attempts", "delivered"): 1,
        ("ponder.webhook.deliveries", "delivered"): 1,
    }


def _counts(readings: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    """(instrument, outcome) -> count, from a metric reader."""
    counts: dict[tuple[str, str], int] = {}
    data = readings.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    outcome = str(dict(point.attributes or {})["ponder.webhook.outcome"])
                    counts[(metric.name, outcome)] = int(point.value)  # type: ignore[union-attr]
    return counts


async def test_the_connection_goes_to_the_checked_address(store: SqliteWorkflowStore) -> None:
    """A host name resolved once to an allowed address is connected to at that address (the
    name itself resolves nowhere: no second lookup), with the name in the Host header; a name
    whose addresses include a non-public one is refused (FAILED, no request)."""
    receiver = Receiver(SECRET).start()
    fake, sender = FakeTime(), HttpxSender()
    looked_up: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return {"hooks.test": ["127.0.0.1"], "mixed.test": ["93.184.216.34", "10.0.0.7"]}[host]

    policy = DestinationPolicy(
        hosts=["hooks.test", "mixed.test"], networks=["127.0.0.1/32"], resolver=resolver
    )
    try:
        good = await _ended(
            store, f"http://hooks.test:{receiver.port}/in", "workflows/good", at=fake.start
        )
        bad = await _ended(
            store, f"http://mixed.test:{receiver.port}/in", "workflows/bad", at=fake.start
        )
        for name in (good, bad):
            await _deliverer(store, fake, sender, policy=policy).deliver(name)
    finally:
        receiver.close()
        await sender.close()
    assert looked_up == ["hooks.test", "mixed.test"]
    (only,) = receiver.deliveries
    assert only.headers["Host"] == f"hooks.test:{receiver.port}"
    assert only.verified
    record = await store.get(bad)
    assert record is not None
    assert record.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_FAILED
    assert "10.0.0.7, a non-public address" in record.notification_delivery.last_error


def _certificate(folder: Path, name: str) -> Path:
    """A self-signed certificate (and key, beside it) for `name`, made by openssl."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


async def test_https_pinned_to_the_address_still_checks_the_name(
    store: SqliteWorkflowStore, tmp_path: Path
) -> None:
    """Over https to a name resolved to 127.0.0.1: the TLS handshake carries the name (SNI)
    and the certificate is checked against it, so a certificate for hooks.test is accepted for
    hooks.test and refused for other.test (a retried error, then FAILED)."""
    cert = _certificate(tmp_path, "hooks.test")
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, cert.with_suffix(".key"))
    receiver = Receiver(SECRET, tls=served).start()
    fake, sender = FakeTime(), HttpxSender(verify=ssl.create_default_context(cafile=str(cert)))

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    policy = DestinationPolicy(hosts=["*"], networks=["127.0.0.1/32"], resolver=resolver)
    try:
        good = await _ended(
            store, f"https://hooks.test:{receiver.port}/in", "workflows/good", at=fake.start
        )
        bad = await _ended(
            store, f"https://other.test:{receiver.port}/in", "workflows/bad", at=fake.start
        )
        for name in (good, bad):
            await _deliverer(store, fake, sender, policy=policy, total_seconds=2).deliver(name)
    finally:
        receiver.close()
        await sender.close()
    (only,) = receiver.deliveries
    assert only.headers["Host"] == f"hooks.test:{receiver.port}"
    assert "hooks.test" in receiver.server_names
    record = await store.get(good)
    assert record is not None
    assert record.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    record = await store.get(bad)
    assert record is not None
    assert record.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_FAILED
    assert "certificate" in record.notification_delivery.last_error.lower()


async def test_redirects_are_not_followed(store: SqliteWorkflowStore) -> None:
    """A 302 pointing at the metadata address is a failed attempt ("HTTP 302"), retried at
    the receiver itself; the redirect is never followed."""
    receiver = Receiver(SECRET, fail_first=1, fail_status=302).start()
    fake, sender = FakeTime(), HttpxSender()
    try:
        name = await _ended(store, receiver.url, at=fake.start)
        await _deliverer(store, fake, sender).deliver(name)
    finally:
        receiver.close()
        await sender.close()
    assert [d.status for d in receiver.deliveries] == [302, 204]
    record = await store.get(name)
    assert record is not None
    assert record.notification_delivery.attempts == 2


async def test_gives_up_after_the_retry_time(store: SqliteWorkflowStore) -> None:
    """A receiver that always fails: attempts stop once the next wait would pass the retry
    time (10 s: waits 0.5, 1, 2, 4), and the record says FAILED with the last error."""
    receiver = Receiver(SECRET, fail_first=1000, fail_status=503).start()
    fake, sender = FakeTime(), HttpxSender()
    try:
        name = await _ended(store, receiver.url, at=fake.start)
        await _deliverer(store, fake, sender, total_seconds=10.0).deliver(name)
    finally:
        receiver.close()
        await sender.close()
    assert len(receiver.deliveries) == 5
    assert fake.waits == [0.5, 1.0, 2.0, 4.0]
    record = await store.get(name)
    assert record is not None
    delivery = record.notification_delivery
    assert delivery.state == pb.NOTIFICATION_DELIVERY_STATE_FAILED
    assert (delivery.attempts, delivery.last_status_code) == (5, 503)
    assert delivery.last_error == "HTTP 503"


async def test_connection_refused_then_delivered(store: SqliteWorkflowStore) -> None:
    """Nothing listens at first (connection refused, recorded with status 0); the receiver
    comes up during the second wait and gets exactly one delivery."""
    # The port is held, bound but not listening (connections are refused), until the receiver
    # takes it: no other process can start listening there meanwhile.
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    receiver = Receiver(SECRET, port=port)
    fake, sender = FakeTime(), HttpxSender()
    seen: list[str] = []

    async def sleep(seconds: float) -> None:
        record = await store.get(name)
        assert record is not None
        seen.append(record.notification_delivery.last_error)
        if len(seen) == 2:
            placeholder.close()
            receiver.start()
        await fake.sleep(seconds)

    try:
        name = await _ended(store, f"http://127.0.0.1:{port}/hook", at=fake.start)
        deliverer = _deliverer(store, fake, sender)
        deliverer._sleep = sleep  # the test's hook into the wait
        await deliverer.deliver(name)
    finally:
        placeholder.close()
        receiver.close()
        await sender.close()
    assert all("ConnectError" in error for error in seen), seen
    assert [d.status for d in receiver.deliveries] == [204]
    record = await store.get(name)
    assert record is not None
    assert record.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    assert record.notification_delivery.attempts == 3


def _alone(store: WorkflowStore, fake: FakeTime, sender: HttpxSender) -> Notifier:
    """The notifier of a gateway that delivers alone (its records not shared: no sweep)."""
    return Notifier(
        _deliverer(store, fake, sender),
        store,
        sweep_seconds=None,
        takeover_seconds=0,
        clock=fake.clock,
    )


async def test_a_delivery_left_by_a_stopped_gateway_is_resumed(tmp_path: Path) -> None:
    """A gateway stops while waiting to retry (its delivery DELIVERING on the durable record);
    the next one, on the same SQLite file, takes it over at start and delivers it once."""
    path = tmp_path / "workflows.sqlite3"
    receiver = Receiver(SECRET, fail_first=1).start()
    sender = HttpxSender()
    stopped = asyncio.Event()

    async def wait_forever(seconds: float) -> None:
        stopped.set()
        await asyncio.Event().wait()

    try:
        first = SqliteWorkflowStore(path)
        name = await _ended(first, receiver.url)
        deliverer = _deliverer(first, FakeTime(), sender)
        deliverer._sleep = wait_forever  # the gateway stops during the backoff
        notifier = Notifier(deliverer, first, sweep_seconds=None, takeover_seconds=0)
        await notifier.start()
        await stopped.wait()
        await notifier.drain()
        await first.close()
        second = SqliteWorkflowStore(path)
        later = FakeTime()
        later.now += 60
        notifier = _alone(second, later, sender)
        await notifier.start()
        await notifier.idle()
        record = await second.get(name)
        await second.close()
    finally:
        receiver.close()
        await sender.close()
    assert [d.status for d in receiver.deliveries] == [500, 204]
    assert record is not None
    assert record.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED
    assert record.notification_delivery.attempts == 2


async def test_a_delivery_waiting_out_its_backoff_is_resumed_at_start(store) -> None:
    """A gateway stopped while its delivery waited 200 s for its next attempt: the next start
    on the same file resumes it (waits the rest, then delivers once), not only due ones."""
    receiver = Receiver(SECRET).start()
    fake, sender = FakeTime(), HttpxSender()
    try:
        name = await _ended(store, receiver.url, at=fake.start)
        record = await store.get(name)
        assert record is not None
        record.notification_delivery.state = pb.NOTIFICATION_DELIVERY_STATE_DELIVERING
        record.notification_delivery.attempts = 1
        record.notification_delivery.next_attempt_time.FromSeconds(int(fake.now) + 200)
        await store.save(record)
        notifier = _alone(store, fake, sender)
        await notifier.start()
        await notifier.idle()
        final = await store.get(name)
    finally:
        receiver.close()
        await sender.close()
    assert fake.waits[0] == pytest.approx(200)
    assert [d.status for d in receiver.deliveries] == [204]
    assert final is not None
    assert final.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED


async def test_a_replica_takes_over_on_redis(redis_url: str) -> None:
    """With records in Redis, a sweep leaves a delivery alone until its due time is the
    takeover time past (another replica may be making it), then takes it over and delivers."""
    receiver = Receiver(SECRET).start()
    client = aioredis.Redis.from_url(redis_url)
    store = RedisWorkflowStore(client)
    fake, sender = FakeTime(), HttpxSender()
    try:
        name = await _ended(store, receiver.url, at=fake.start)
        notifier = Notifier(
            _deliverer(store, fake, sender),
            store,
            sweep_seconds=None,
            takeover_seconds=40,
            clock=fake.clock,
        )
        assert await notifier.sweep() == 0  # due now: its own gateway is on it
        fake.now += 41
        assert await notifier.sweep() == 1
        await notifier.idle()
        record = await store.get(name)
    finally:
        receiver.close()
        await sender.close()
        await client.aclose()
    assert [d.status for d in receiver.deliveries] == [204]
    assert record is not None
    assert record.notification_delivery.state == pb.NOTIFICATION_DELIVERY_STATE_DELIVERED


def test_the_readme_verification_snippet_verifies() -> None:
    """The README's Webhooks section names the headers, and its Python verification snippet
    (run here as written) accepts the gateway's signature and refuses a tampered body, a
    wrong secret and an old timestamp."""
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    section = readme.split("\n## Webhooks", 1)[1].split("\n## ", 1)[0]
    for header in ("Ponder-Signature", "Ponder-Event-Id", "Ponder-Event-Type"):
        assert header in section
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    verify = namespace["verify_ponder_signature"]
    body, now = b'{"workflow":{"name":"workflows/x"}}', int(time.time())
    header = signature_header([SECRET.encode()], now, body)
    assert verify(body, header, SECRET)
    assert not verify(body + b" ", header, SECRET)
    assert not verify(body, header, "another-secret-0123456789")
    assert not verify(body, signature_header([SECRET.encode()], now - 3600, body), SECRET)
