"""`python -m bench.bare_worker --address HOST:PORT --task-queue Q`: a worker process for the
baseline workflow of `bench.bare`, the counterpart of the echo worker. SIGTERM/SIGINT stop it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareWorkflow, bare_echo
from bench.servers import run_then_exit

logger = logging.getLogger(__name__)


async def serve(address: str, namespace: str, task_queue: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    worker = Worker(client, task_queue=task_queue, workflows=[BareWorkflow], activities=[bare_echo])
    async with worker:
        logger.info("bare worker on task queue %r (Temporal %s)", task_queue, address)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_worker", description=__doc__)
    parser.add_argument("--address", required=True, help="Temporal frontend, HOST:PORT")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_then_exit(
        lambda: asyncio.run(serve(args.address, args.namespace, args.task_queue)), "bare worker"
    )


if __name__ == "__main__":
    main()
