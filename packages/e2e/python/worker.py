"""A Python worker serving the activity ``py_transform`` with the official S3 driver.

    python worker.py ADDRESS NAMESPACE TASK_QUEUE S3_ENDPOINT BUCKET THRESHOLD

Prints ``ready`` once polling; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import signal
import sys

from contextlib import AsyncExitStack

from interop import open_s3_driver
from temporalio import activity
from temporalio.client import Client
from temporalio.converter import DataConverter, ExternalStorage
from temporalio.worker import Worker


@activity.defn
async def py_transform(value: str) -> dict:
    """Reports what arrived and answers with a large value of its own."""
    return {
        "seenLength": len(value),
        "seenSha256": hashlib.sha256(value.encode()).hexdigest(),
        "reply": "from Python 🐍 " + value[::-1],
    }


async def main(address: str, namespace: str, task_queue: str, endpoint: str, bucket: str, threshold: str) -> None:
    async with AsyncExitStack() as stack:
        storage = ExternalStorage(
            drivers=[await open_s3_driver(stack, endpoint, bucket)],
            payload_size_threshold=int(threshold),
        )
        client = await Client.connect(
            address,
            namespace=namespace,
            data_converter=dataclasses.replace(DataConverter.default, external_storage=storage),
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with Worker(client, task_queue=task_queue, activities=[py_transform]):
            print("ready", flush=True)
            await stop.wait()


if __name__ == "__main__":
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
