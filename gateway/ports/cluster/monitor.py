"""The monitor: this node's NATS connection, and a probe of the stream twice a second.

:meth:`StreamMonitor.run` connects (retrying every second, degraded meanwhile),
then probes: stream info — creating the stream if it is missing; at the first
probe of a start, applying this node's retention and replicas to a stream that
exists with others (``_apply_options``) — gives its
identity (``created``: a re-created stream is a new epoch, the reader follows
it), its last sequence (lag) and its first (the resume horizon).  The reader is
(re)started when the identity changes, when it has no consumer, or when it has
not moved for ``STALL_PROBES`` probes while the stream has records it lacks.

Health: the node is degraded (:attr:`ClusterSource.problem`) while NATS is
unreachable, JetStream does not answer, the node is still applying what the
stream held when its reader started, or the writer cannot publish.  Only these
tasks await NATS: ingest and fan-out never wait for the monitor.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import nats
import structlog
from nats.js import api
from nats.js.errors import APIError, NotFoundError

if TYPE_CHECKING:
    from gateway.ports.cluster.source import ClusterSource

log = structlog.get_logger("gateway.cluster")

PROBE_INTERVAL = 0.5
REQUEST_TIMEOUT = 2.0
#: Probes without progress, with records waiting, before the reader is restarted.
STALL_PROBES = 6
#: Errors of the NATS client and of the connection under it (timeouts included).
NATS_ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)


class StreamMonitor:
    """Connects, probes, restarts the reader when needed and keeps the node's health."""

    def __init__(self, source: ClusterSource) -> None:
        self.source = source
        self._last_probe_applied = 0
        self._still = 0
        #: True once this node's retention and replicas were applied to the stream (or refused).
        self._configured = False

    async def run(self) -> None:
        source = self.source
        while source.nc is None:
            try:
                source.nc = await nats.connect(
                    servers=source.servers,
                    name=f"event-gateway {source.node}",
                    connect_timeout=2,
                    reconnect_time_wait=0.5,
                    max_reconnect_attempts=-1,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
            except NATS_ERRORS as exc:
                source.set_problem(f"cannot reach NATS ({', '.join(source.servers)}): {exc or type(exc).__name__}")
                await asyncio.sleep(1.0)
        source.js = source.nc.jetstream(timeout=REQUEST_TIMEOUT)
        while True:
            try:
                await self.probe()
            except NATS_ERRORS as exc:
                source.set_problem(f"JetStream unavailable: {exc or type(exc).__name__}")
            await asyncio.sleep(PROBE_INTERVAL)

    async def _on_disconnected(self) -> None:
        self.source.set_problem("disconnected from NATS")

    async def _on_reconnected(self) -> None:
        nc = self.source.nc
        log.info("cluster.reconnected", server=str(nc.connected_url.netloc if nc and nc.connected_url else ""))

    async def _on_error(self, exc: Exception) -> None:
        log.warning("cluster.nats_error", error=str(exc) or type(exc).__name__)

    async def probe(self) -> None:
        """Stream info: create the stream if missing, follow its identity, measure lag."""
        source, reader = self.source, self.source.reader
        assert source.js is not None
        try:
            info = await source.js.stream_info(source.name)
        except NotFoundError:
            info = await self._create_stream()
        if not self._configured:
            info = await self._apply_options(info)
        if info.created != source.created or not reader.following or self._stalled(info.state.last_seq):
            await reader.follow(info)
        source.last_sseq = max(source.last_sseq, info.state.last_seq)
        reader.index.trim(info.state.first_seq)
        if source.sync_target is not None and source.applied_sseq >= source.sync_target:
            source.sync_target = None
        if source.sync_target is not None:
            source.set_problem(f"catching up with the stream (applied {source.applied_sseq} of {source.sync_target})")
        else:
            source.set_problem(source.writer.problem)

    def _stalled(self, last_sseq: int) -> bool:
        """True when the stream has records this node has not applied and its reader has not
        moved for ``STALL_PROBES`` probes (the reader is then restarted from the applied position)."""
        applied = self.source.applied_sseq
        if last_sseq <= applied or applied != self._last_probe_applied:
            self._last_probe_applied, self._still = applied, 0
            return False
        self._still += 1
        if self._still < STALL_PROBES:
            return False
        log.warning("cluster.reader_stalled", stream=self.source.name, applied=applied, last=last_sseq)
        self._still = 0
        return True

    async def _create_stream(self) -> api.StreamInfo:
        source = self.source
        assert source.js is not None
        settings = source.settings
        info = await source.js.add_stream(
            name=source.name,
            subjects=[source.subject],
            num_replicas=settings.replicas,
            max_msgs=settings.max_events,
            max_age=settings.max_age_s,
            allow_direct=True,
            storage=api.StorageType.FILE,
        )
        log.info("cluster.stream_created", stream=source.name, replicas=settings.replicas)
        return info

    async def _apply_options(self, info: api.StreamInfo) -> api.StreamInfo:
        """Once per start: this node's ``--cluster-max-events``, ``--cluster-max-age`` and
        ``--cluster-replicas`` on a stream that exists with others (the stream is updated, logged).

        Refused by JetStream (e.g. more replicas than NATS servers): logged, the stream is used as it
        is, not retried.  Not answered (no quorum …): retried at the next probe.
        """
        source, settings, config = self.source, self.source.settings, info.config
        wanted = {"max_msgs": settings.max_events, "max_age": settings.max_age_s, "num_replicas": settings.replicas}
        current = {"max_msgs": config.max_msgs, "max_age": config.max_age, "num_replicas": config.num_replicas}
        changed = {key: value for key, value in wanted.items() if not _same(current[key], value)}
        if changed:
            assert source.js is not None
            try:
                info = await source.js.update_stream(config.evolve(**changed))
            except APIError as exc:
                error = exc.description or str(exc) or type(exc).__name__
                log.warning("cluster.stream_update_failed", stream=source.name, error=error, wanted=changed)
            else:
                log.info(
                    "cluster.stream_updated", stream=source.name, before={k: current[k] for k in changed}, after=changed
                )
        self._configured = True
        return info


def _same(current: float | None, wanted: float) -> bool:
    """Equal to the nanosecond (``max_age`` comes back as float seconds)."""
    return current is not None and round(current * 1e9) == round(wanted * 1e9)
