"""Prometheus metrics of the manager, served on their own port (`serve --metrics HOST:PORT`).

Like the agent's: a separate, unauthenticated listener that an operator binds where Prometheus
can reach it (loopback by default), so that scraping needs no API token and the figures (tenant
names among them) stay off the API's address. Counters are plain dicts under one lock, bumped
by the API's middleware and error handler; per-tenant object counts are read from the store at
scrape time (one grouped query per quota per scrape), with the limit that applies to each: the
tenant's own, or the manager's default; so are the edge gateways of each pool, and how many of
them are up (`onm.manager.gateway_health`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from onm.errors import OnmError, QuotaExceededError
from onm.manager import gateway_health, quota
from onm.manager.ratelimit import Limits, OperationClass
from onm.manager.store import Store
from onm.model.principal import ADMIN
from onm.model.tenant import QuotaKind


class ManagerMetrics(Collector):
    """What the API has answered, refused and throttled since the manager started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._throttled: Counter[str] = Counter()
        self._auth_failures = 0
        self._quota_refusals: Counter[str] = Counter()
        self._store: Store | None = None
        self._limits: Limits | None = None
        self._quotas = quota.DEFAULT

    def watch(self, store: Store, limits: Limits, quotas: quota.Quotas = quota.DEFAULT) -> None:
        """Also export the objects each tenant holds (from `store`) against its limits (its
        own, else `quotas`), and the configured rates."""
        self._store = store
        self._limits = limits
        self._quotas = quotas

    # --- what the API calls ----------------------------------------------------------------
    def request(self, route: str, method: str, status: int) -> None:
        with self._lock:
            self._requests[route, method, str(status)] += 1

    def throttled(self, op: OperationClass) -> None:
        with self._lock:
            self._throttled[op.value] += 1

    def auth_failed(self) -> None:
        with self._lock:
            self._auth_failures += 1

    def error(self, error: OnmError) -> None:
        """Called for every error answer the API gives from the error tree."""
        if isinstance(error, QuotaExceededError):
            with self._lock:
                self._quota_refusals[error.quota] += 1

    # --- what Prometheus reads -------------------------------------------------------------
    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        with self._lock:
            requests = dict(self._requests)
            throttled = dict(self._throttled)
            failures = self._auth_failures
            refusals = dict(self._quota_refusals)
        family = CounterMetricFamily(
            "onm_manager_requests",
            "API answers by route, method and status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in sorted(requests.items()):
            family.add_metric([route, method, status], count)
        yield family
        family = CounterMetricFamily(
            "onm_manager_throttled",
            "requests answered 429, by operation class (auth: failed authentications)",
            labels=["class"],
        )
        for op in OperationClass:
            family.add_metric([op.value], throttled.get(op.value, 0))
        yield family
        yield CounterMetricFamily(
            "onm_manager_auth_failures", "requests answered 401", value=failures
        )
        family = CounterMetricFamily(
            "onm_manager_quota_refusals", "creates refused by a tenant quota", labels=["quota"]
        )
        for kind in QuotaKind:
            family.add_metric([kind.value], refusals.get(kind.value, 0))
        yield family
        if self._limits is not None:
            gauge = GaugeMetricFamily(
                "onm_manager_rate_limit",
                "configured token buckets: sustained rate per second and burst",
                labels=["class", "what"],
            )
            for op, rate in self._limits.rates.items():
                gauge.add_metric([op.value, "per_second"], rate.per_second)
                gauge.add_metric([op.value, "burst"], rate.burst)
            yield gauge
        if self._store is not None:
            with self._store.read(ADMIN, dt.datetime.now(dt.UTC)) as tx:
                found = quota.usage_by_tenant(tx, self._quotas)
                edge = gateway_health.counts(tx)
            held = GaugeMetricFamily(
                "onm_manager_tenant_objects", "objects each tenant holds", labels=["tenant", "kind"]
            )
            limits = GaugeMetricFamily(
                "onm_manager_tenant_quota",
                "the quota limit that applies to each tenant: its own, else the default",
                labels=["tenant", "kind"],
            )
            for tenant, uses in sorted(found.items()):
                for use in uses:
                    held.add_metric([tenant, use.kind.value], use.used)
                    limits.add_metric([tenant, use.kind.value], use.limit)
            yield held
            yield limits
            yield from _edge_families(edge)


def _edge_families(found: list[gateway_health.PoolCount]) -> Iterator[GaugeMetricFamily]:
    labels = ["tenant", "network", "pool"]
    up = GaugeMetricFamily(
        "onm_manager_edge_gateways_up",
        "gateways of each edge pool the manager holds up",
        labels=labels,
    )
    every = GaugeMetricFamily(
        "onm_manager_edge_gateways",
        "gateways of each edge pool, by state",
        labels=[*labels, "state"],
    )
    for c in found:
        up.add_metric([c.tenant, c.network, c.pool], c.up)
        every.add_metric([c.tenant, c.network, c.pool, "active"], c.active)
        every.add_metric([c.tenant, c.network, c.pool, "draining"], c.gateways - c.active)
    yield up
    yield every


def serve_metrics(metrics: ManagerMetrics, host: str, port: int) -> Callable[[], None]:
    """Serve `metrics` on HOST:PORT from a background thread; the function that stops it."""
    registry = CollectorRegistry()
    registry.register(metrics)
    server, thread = start_http_server(port, host, registry=registry)

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=5)

    return stop
