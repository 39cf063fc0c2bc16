"""Cluster fixtures: real ``nats-server`` processes (JetStream) and gateway nodes pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Gateway
from tests.natsservers import NatsCluster, start_servers


@pytest.fixture
def nats1(tmp_path: Path) -> Iterator[NatsCluster]:
    """One JetStream server (replicas 1)."""
    cluster = start_servers(tmp_path / "nats", 1)
    yield cluster
    cluster.close()


@pytest.fixture
def nats3(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three JetStream servers in one cluster (replicas 3)."""
    cluster = start_servers(tmp_path / "nats", 3)
    yield cluster
    cluster.close()


NodeFactory = Callable[..., Gateway]


def node_args(cluster: NatsCluster, *extra: str) -> list[str]:
    return ["--cluster", cluster.urls, *extra]


@pytest.fixture
def node_factory(gateway_factory: Callable[..., Gateway]) -> NodeFactory:
    """``node_factory(cluster, *args)``: a gateway node of ``cluster``, healthy (caught up) when returned."""

    def make(cluster: NatsCluster, *args: str, **kw: object) -> Gateway:
        return gateway_factory(*node_args(cluster, *args), **kw)

    return make
