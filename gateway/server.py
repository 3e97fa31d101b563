"""`a2a-gateway serve`: one gateway process, the app of `gateway.app` under uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import urllib.parse
import urllib.request
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from config import temporal
from config.agents import AgentsConfigError
from config.gc_tuning import tune_for_long_running
from config.redis_clients import RedisConfigError
from config.telemetry import TEXT_FORMAT, TelemetryConfigError, configure_logging, configure_tracing
from config.temporal import TemporalConfigError
from gateway.access.auth import ACCESS_TOKEN_PARAM, API_KEY_PARAM
from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.streaming.ws import MAX_MESSAGE_BYTES

logger = logging.getLogger(__name__)


def main(args: argparse.Namespace) -> int:
    """`a2a-gateway serve`, with a start-up failure told in one line (exit 1)."""
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT, force=True)
    try:
        return serve(args)
    except (AgentsConfigError, TelemetryConfigError, TemporalConfigError, RedisConfigError) as err:
        print(f"a2a-gateway serve: {err}", file=sys.stderr, flush=True)
        return 1


class _GatewayServer(uvicorn.Server):
    """Ends open SSE streams as soon as shutdown begins; clients resume on another replica with
    Last-Event-ID instead of holding this one for the whole graceful-shutdown timeout."""

    def __init__(self, app: Starlette, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        end_streams = getattr(self._app.state, "end_streams", None)
        if end_streams is not None:
            end_streams()
        super().handle_exit(sig, frame)


class _RedactCredentials(logging.Filter):
    """Browser streams and WebSockets may carry a credential in the query string (EventSource cannot
    set headers); the logs show the path with the value blanked, however the parameter's name is
    encoded. uvicorn logs a request's path as the third argument of an access-log line, and a
    WebSocket handshake's as the second of a `"WebSocket %s"` line on its error logger."""

    _NAMES = frozenset({API_KEY_PARAM, ACCESS_TOKEN_PARAM})

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.args, tuple):
            return True
        if record.name == "uvicorn.access":
            at = 2
        elif '"WebSocket %s"' in str(record.msg):
            at = 1
        else:
            # uvicorn 0.54 reports every refused WebSocket upgrade (an HTTP answer sent instead) as
            # an error, though the refusal was served as meant (Kludex/uvicorn#3138).
            return record.msg != "ASGI callable returned without completing handshake."
        if len(record.args) > at:
            args = list(record.args)
            args[at] = self._redact(str(args[at]))
            record.args = tuple(args)
        return True

    def _redact(self, path: str) -> str:
        base, mark, query = path.partition("?")
        if not mark:
            return path
        fields = []
        for field in query.split("&"):
            name, equals, _ = field.partition("=")
            secret = equals and urllib.parse.unquote_plus(name) in self._NAMES
            fields.append(f"{name}=[redacted]" if secret else field)
        return f"{base}?{'&'.join(fields)}"


async def _check_temporal(settings: GatewaySettings) -> None:
    connection = temporal.load(settings.temporal_address, settings.temporal_namespace)
    await connection.connect()


def serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = GatewaySettings(**overrides)
    configure_logging(settings.log_format)
    # Redis settings that contradict each other, or a Temporal that cannot be reached as configured
    # (a wrong CA, no client certificate), are told in one line before uvicorn starts, rather than
    # in a traceback of the app's lifespan.
    settings.redis_target()
    asyncio.run(_check_temporal(settings))
    tracing = configure_tracing("a2a-gateway")
    try:
        app = create_app(settings)
        tune_for_long_running()
        redact = _RedactCredentials()
        logging.getLogger("uvicorn.access").addFilter(redact)
        logging.getLogger("uvicorn.error").addFilter(redact)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=settings.access_log,
            timeout_graceful_shutdown=10,
            # uvicorn closes a WebSocket with 1009 on a bigger message, before it has read it all.
            ws_max_size=MAX_MESSAGE_BYTES,
        )
        _GatewayServer(app, config).run()
    finally:
        if tracing is not None:
            tracing.shutdown()
    return 0
