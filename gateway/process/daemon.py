"""``gatewayd``'s programmatic core: build the parts, bind, serve, shut down gracefully.

:func:`build` is the only place that builds the parts and wires them (one
``web.AppKey`` each).  Startup binds ingest first, then HTTP; either failing
raises :class:`StartupError` (one line, reported by ``main``; exit 1, nothing
left bound).  Background tasks (the monitor, systemd pings) live in the app's
``cleanup_ctx``: started with the app, cancelled when it is cleaned up.  Shutdown (SIGTERM/SIGINT): stop ingest,
send every client close 1001 after what it already has, wait for them up to
half the grace period, then stop HTTP and exit 0 within ``shutdown_grace``.
Under systemd (``gateway.notify``): READY=1 once both are bound, STATUS= and
WATCHDOG=1 from the loop, RELOADING=1/READY=1 around SIGHUP, STOPPING=1.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable

import msgspec
from aiohttp import web

from gateway import __version__
from gateway.core.health import Health
from gateway.core.producer_keys import ProducerKeys
from gateway.core.ring import Ring
from gateway.core.sequencer import ProducerTracker
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from gateway.http.app import build_app
from gateway.http.parts import (
    ADMISSION,
    CLUSTER,
    HEALTH,
    HUB,
    INGEST,
    LIFECYCLE,
    STORE,
    STREAM,
    ClientSettings,
    Lifecycle,
)
from gateway.http.subscription import SUBSCRIPTIONS, Subscriptions
from gateway.policy.auth import Authenticator
from gateway.policy.limits import Admission
from gateway.ports.bindings import BindingStore
from gateway.ports.cluster.source import ClusterSettings, ClusterSource
from gateway.ports.curve import CurveServer
from gateway.ports.ingest import Ingest, IngestBindError
from gateway.ports.store import StateDirError, open_state
from gateway.process import logs, monitor, notify, testhooks
from gateway.process.config import Config, ConfigError, needs_restart
from gateway.process.keys import Keys, load_keys, warn_exposed

log = logs.get("gateway.daemon")


#: What SIGHUP hands each reloadable part: the re-read configuration and the key files it names.
Reloader = Callable[[Config, Keys], None]
RELOADERS: web.AppKey[list[Reloader]] = web.AppKey("reloaders")
NOTIFIER = web.AppKey("notifier", notify.Notifier)


def run(config: Config, keys: Keys, reread: Callable[[], Config] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit code (0), or raises :class:`StartupError`.

    ``keys`` are the files ``config`` names, already read (``gateway.process.keys``);
    ``reread`` re-reads the configuration from its sources on SIGHUP.
    """
    logs.configure(config.log_format, config.log_level)
    warn_exposed(config)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio still works
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(config, keys, reread))
    return 0


def build(config: Config, keys: Keys) -> web.Application:
    """The one place that builds the parts and wires them: each goes to its users through its ``AppKey``."""
    ring = Ring(config.ring_size, max_bytes=config.ring_bytes)
    hub = Hub(
        ring,
        policy=config.slow_client,
        queue_events=config.client_queue_events,
        queue_bytes=config.client_queue_bytes,
    )
    tracker = ProducerTracker()
    store = None
    if config.state_dir:  # restores the epoch, the ring and producer positions
        store = open_state(
            config.state_dir,
            ring,
            tracker,
            fsync_interval=config.fsync_interval,
            coalesce_types=frozenset(config.coalesce_types),
        )
    stream = Stream(
        ring,
        hub,
        epoch=store.epoch if store is not None else secrets.token_hex(4),
        max_event_bytes=config.max_event_bytes,
        types_whitelist=config.types_whitelist,
        coalesce_types=config.coalesce_types,
        tracker=tracker,
        sink=store,
    )
    curve = bindings = None
    if keys.curve is not None:
        curve = CurveServer(keys.curve.keypair, keys.curve.allowed)
        stream.producer_keys = ProducerKeys()  # a producer id belongs to the first client key using it
        if config.state_dir:
            bindings = BindingStore(config.state_dir, stream.producer_keys)
            bindings.load()
    ingest = Ingest(config.ingest, stream, max_event_bytes=config.max_event_bytes, curve=curve, bindings=bindings)
    cluster = ClusterSource(cluster_settings(config), stream, hub) if config.cluster_servers else None
    auth = Authenticator(keys.credentials, config.allow_origin, keys.peers, hub)
    admission = Admission(hub, config.max_clients, config.max_clients_per_ip)
    settings = msgspec.convert(config, ClientSettings, from_attributes=True)
    app = build_app(settings, auth)
    app[LIFECYCLE] = Lifecycle()
    app[STREAM] = stream
    app[HUB] = hub
    app[INGEST] = ingest
    app[STORE] = store
    app[CLUSTER] = cluster
    app[ADMISSION] = admission
    app[HEALTH] = Health()
    app[SUBSCRIPTIONS] = Subscriptions(stream, hub, auth, admission, settings)
    reloaders: list[Reloader] = [lambda new, keys: auth.reload(keys.credentials, new.allow_origin, keys.peers)]
    if curve is not None:
        reloaders.append(lambda new, keys: _reload_curve(curve, keys))
    reloaders.append(lambda new, keys: logs.configure(new.log_format, new.log_level))
    app[RELOADERS] = reloaders
    app[NOTIFIER] = notify.Notifier.from_environ()
    app.cleanup_ctx.append(background)
    return app


def cluster_settings(config: Config) -> ClusterSettings:
    return ClusterSettings(
        servers=config.cluster_servers,
        stream=config.cluster_stream,
        replicas=config.cluster_replicas,
        max_events=config.cluster_max_events,
        max_age_s=config.cluster_max_age_s,
        node=f"{socket.gethostname()}:{config.port}",
    )


def _reload_curve(curve: CurveServer, keys: Keys) -> None:
    if keys.curve is not None:  # CURVE cannot be switched off while bound
        curve.reload(keys.curve.keypair[0], keys.curve.allowed)


class StartupError(RuntimeError):
    """The daemon could not start; ``str()`` is the one line for the operator, and nothing is left bound."""


async def serve(config: Config, keys: Keys, reread: Callable[[], Config] | None = None) -> None:
    """Bind, serve until SIGTERM/SIGINT, shut down; :class:`StartupError` if it cannot start."""
    loop = asyncio.get_running_loop()
    try:
        app = build(config, keys)
        app[INGEST].bind()
    except (StateDirError, IngestBindError) as exc:
        raise StartupError(str(exc)) from None
    notifier = app[NOTIFIER]
    runner = await _listen(app, config)
    _settle_collector()
    app[INGEST].start(loop)
    store = app[STORE]
    if store is not None:
        store.start(loop)
    cluster = app[CLUSTER]
    if cluster is not None:
        cluster.start(loop)
    app[LIFECYCLE].serving = True
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, notifier.reloading, lambda: reload(app, config, reread))
    testhooks.install_test_hooks(loop)
    log.info(
        "gateway.started",
        version=__version__,
        listen=config.listen,
        ingest=config.ingest,
        epoch=app[STREAM].epoch,
        ring_size=config.ring_size,
        ring_bytes=config.ring_bytes,
    )
    notifier.send("READY=1", f"STATUS={notify.status_line(app)}")
    await stop.wait()
    notifier.send("STOPPING=1", f"STATUS=stopping: closing {len(app[HUB].subscribers)} clients")
    await shutdown(app, runner, config.shutdown_grace)
    notifier.close()


async def _listen(app: web.Application, config: Config) -> web.AppRunner:
    """Start the app (its ``cleanup_ctx`` too) and listen; on failure undo both and raise :class:`StartupError`."""
    # keepalive_timeout: a connection that has not sent a complete request within
    # handshake_timeout (at the start, or idle between HTTP requests) is closed.
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=1.0,
        keepalive_timeout=config.handshake_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        app[INGEST].close()
        await runner.cleanup()
        raise StartupError(f"cannot listen on {config.listen}: {exc.strerror or exc}") from None
    return runner


def _settle_collector() -> None:
    """Startup objects leave the collector's view.

    The thresholds stay CPython's own (700, 10, 10): the data path leaves nothing
    tracked behind (ring entries are not tracked at all), so a raised young threshold
    saves no ingest CPU, while it let one young collection scan every object of the
    clients that connected since the last one (~50k objects for 1,000 clients: a 40 ms
    pause, docs/benchmarks.md).
    """
    gc.freeze()


async def background(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the monitor and the systemd tasks run while the app does."""
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(monitor.monitor(app[HEALTH], app[STREAM], app[HUB])),
        *notify.supervise(app[NOTIFIER], app),
    ]
    yield
    for task in tasks:
        task.cancel()


def reload(app: web.Application, config: Config, reread: Callable[[], Config] | None) -> None:
    """SIGHUP: re-read the configuration and its key files, hand them to every reloader; clients stay.

    Options only a restart applies keep their running value: each one changed since
    startup is logged (``gateway.restart_needed``) and listed in ``/status`` until then.
    """
    try:
        new = reread() if reread is not None else config
        keys = load_keys(new)
    except ConfigError as exc:
        log.error("gateway.reload_failed", error=str(exc))
        return
    warn_exposed(new)
    lifecycle = app[LIFECYCLE]
    lifecycle.restart_needed = needs_restart(config, new)
    for name in lifecycle.restart_needed:
        log.warning(
            "gateway.restart_needed",
            option=name,
            running=getattr(config, name),
            configured=getattr(new, name),
        )
    for reloader in app[RELOADERS]:
        try:
            reloader(new, keys)
        except Exception as exc:  # noqa: BLE001 - one bad reloader must not stop the others
            log.error("gateway.reload_failed", error=str(exc))
    log.info("gateway.reloaded", log_level=new.log_level, restart_needed=lifecycle.restart_needed)


async def shutdown(app: web.Application, runner: web.AppRunner, grace: float) -> None:
    started = time.monotonic()
    lifecycle, hub, ingest, store, cluster = app[LIFECYCLE], app[HUB], app[INGEST], app[STORE], app[CLUSTER]
    lifecycle.shutting_down = True
    log.info("gateway.stopping", clients=len(hub.subscribers))
    ingest.close()
    if store is not None:
        store.close()  # nothing more is appended once ingest is closed
    if cluster is not None:
        await cluster.close()
    clients = list(hub.subscribers)
    for sub in clients:
        hub.close(sub, 1001, "gateway shutting down")
    # Give clients half the grace period to receive what they were sent and the close frame.
    deadline = started + grace / 2
    while time.monotonic() < deadline and any(s.transport.get_write_buffer_size() for s in clients):
        await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(runner.cleanup(), timeout=max(0.1, grace - (time.monotonic() - started) - 0.5))
    except TimeoutError:
        log.warning("gateway.cleanup_timeout")
    log.info("gateway.stopped", uptime_s=round(time.monotonic() - lifecycle.started_monotonic, 3))
