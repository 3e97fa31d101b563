"""`a2a-worker --agent NAME`: a Temporal worker on the agent's task queue. SIGTERM/SIGINT = graceful stop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

import uvloop
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from config import temporal
from config.gc_tuning import tune_for_long_running
from config.help_text import CONNECTION_ENVIRONMENT
from config.telemetry import TEXT_FORMAT, configure_logging, configure_tracing, tracing_enabled
from config.version import package_version
from workers.metrics import WorkerMetrics, bind_address, plain_runtime, prometheus_runtime
from workers.settings import WorkerSettings
from workers.worker import build_agent, create_worker

logger = logging.getLogger(__name__)


async def serve(settings: WorkerSettings) -> None:
    # A bad agent (or a Claude agent without its key) fails before anything connects.
    build_agent(settings.agent, settings.agent_config(), anthropic_api_key=settings.api_key())
    runtime = metrics_runtime(settings)
    # The workflow and activity spans continue the trace of the request that started the task.
    interceptors: list[Interceptor] = [TracingInterceptor()] if tracing_enabled() else []
    connection = temporal.load(settings.temporal_address, settings.temporal_namespace)
    client = await connection.connect(
        data_converter=pydantic_data_converter,
        runtime=runtime,
        interceptors=interceptors,
    )
    # Blocking: with every connection busy (hundreds of turns streaming at once), a publish waits for
    # one instead of failing its turn with "Too many connections".
    redis = settings.redis_target().client(
        max_connections=settings.redis_max_connections, wait_for_connection=20
    )
    try:
        metrics = WorkerMetrics(runtime.metric_meter, agent=settings.agent)
        worker = create_worker(client, redis, settings, metrics=metrics)
        tune_for_long_running()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with worker:
            logger.info(
                "worker for agent '%s' on task queue '%s' (Temporal %s, %s)",
                settings.agent,
                worker.task_queue,
                settings.temporal_address,
                settings.redis_target().describe(),
            )
            await stop.wait()
            logger.info("stopping: finishing running activities")
    finally:
        await redis.aclose()


def metrics_runtime(settings: WorkerSettings) -> Runtime:
    """The Temporal runtime serving the worker's metrics; one whose meter records nothing when they
    are off."""
    if not settings.metrics_port:
        return plain_runtime()
    runtime = prometheus_runtime(settings.metrics_host, settings.metrics_port)
    logger.info(
        "metrics on http://%s/metrics", bind_address(settings.metrics_host, settings.metrics_port)
    )
    return runtime


ENVIRONMENT = f"""environment:
{CONNECTION_ENVIRONMENT}\
  A2A_CONFIG                                the agents file (TOML): the agent's kind and options
  ANTHROPIC_API_KEY                         a Claude agent's key
  A2A_WORKER_*                              every other setting (docs/settings.md)
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="a2a-worker",
        description=__doc__,
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("--agent", help="agent to serve (A2A_WORKER_AGENT; default echo)")
    parser.add_argument(
        "--task-queue", help="task queue (A2A_WORKER_TASK_QUEUE; default a2a-agent-<agent>)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    overrides = {k: v for k, v in (("agent", args.agent), ("task_queue", args.task_queue)) if v}
    code = 0
    tracing = None
    try:
        settings = WorkerSettings(**overrides)
        configure_logging(settings.log_format)
        tracing = configure_tracing("a2a-worker")
        # uvloop: the worker's Redis writes and the sandbox threads' wake-ups cost less than on
        # asyncio's selector loop.
        uvloop.run(serve(settings))
    except Exception as err:
        logger.error("a2a-worker: %s", err)
        code = 1
    finally:
        if tracing is not None:
            tracing.shutdown()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    # temporalio can abort at interpreter exit; leave without running finalizers.
    os._exit(code)
