"""Encode or decode values with temporalio's DataConverter and external storage.

    python interop.py encode < request.json > response.json
    python interop.py decode < request.json > response.json

Request: {"driver": "s3" | "redis", "threshold": int, "s3": {"endpoint", "bucket"},
          "redis": {"url", "keyPrefix"}, "cases": [...]}
- encode: each case is {"values": [...], "target": TARGET | null}; the answer per case is
  {"payloads": [b64 Payload proto as the DataConverter wrote it], "originals": [b64 Payload
  proto before external storage]}.
- decode: each case is {"payloads": [b64]}; the answer per case is {"values": [...]}.
TARGET: {"kind": "workflow" | "activity", "namespace", "id"?, "runId"?, "type"?}.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import sys
from contextlib import AsyncExitStack
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    ExternalStorage,
    StorageDriver,
    StorageDriverActivityInfo,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
)


async def open_s3_driver(stack: AsyncExitStack, endpoint: str, bucket: str) -> StorageDriver:
    """The official S3 driver over an aioboto3 client for ``endpoint`` (path style, dummy credentials)."""
    import aioboto3
    from botocore.config import Config
    from temporalio.contrib.aws.s3driver import S3StorageDriver
    from temporalio.contrib.aws.s3driver.aioboto3 import new_aioboto3_client

    s3 = await stack.enter_async_context(
        aioboto3.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test-secret",
            config=Config(s3={"addressing_style": "path"}),
        )
    )
    return S3StorageDriver(client=new_aioboto3_client(s3), bucket=bucket)


async def open_driver(stack: AsyncExitStack, request: dict[str, Any]) -> StorageDriver:
    """The official S3 driver (aioboto3 client) or the sample-layout Redis driver."""
    if request["driver"] == "s3":
        return await open_s3_driver(stack, request["s3"]["endpoint"], request["s3"]["bucket"])
    if request["driver"] == "redis":
        import redis.asyncio as redis
        from redis_driver import SampleLayoutRedisDriver

        client = redis.Redis.from_url(request["redis"]["url"])
        stack.push_async_callback(client.aclose)
        return SampleLayoutRedisDriver(client, key_prefix=request["redis"]["keyPrefix"])
    raise ValueError(f"unknown driver {request['driver']!r}")


def to_target(t: dict[str, Any] | None) -> StorageDriverWorkflowInfo | StorageDriverActivityInfo | None:
    if t is None:
        return None
    cls = StorageDriverWorkflowInfo if t["kind"] == "workflow" else StorageDriverActivityInfo
    return cls(namespace=t["namespace"], id=t.get("id"), run_id=t.get("runId"), type=t.get("type"))


def b64(payload: Payload) -> str:
    return base64.b64encode(payload.SerializeToString()).decode()


def from_b64(text: str) -> Payload:
    payload = Payload()
    payload.ParseFromString(base64.b64decode(text))
    return payload


async def main(mode: str) -> dict[str, Any]:
    request = json.load(sys.stdin)
    async with AsyncExitStack() as stack:
        driver = await open_driver(stack, request)
        storage = ExternalStorage(drivers=[driver], payload_size_threshold=request["threshold"])
        converter = dataclasses.replace(DataConverter.default, external_storage=storage)
        answers = []
        for case in request["cases"]:
            if mode == "encode":
                # The worker binds the workflow/activity being served the same way (an SDK-internal hook).
                scoped = converter._with_store_context(StorageDriverStoreContext(target=to_target(case["target"])))
                payloads = await scoped.encode(case["values"])
                originals = converter.payload_converter.to_payloads(case["values"])
                answers.append({"payloads": [b64(p) for p in payloads], "originals": [b64(p) for p in originals]})
            else:
                values = await converter.decode([from_b64(p) for p in case["payloads"]])
                answers.append({"values": values})
        return {"cases": answers}


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("encode", "decode"):
        sys.exit(__doc__)
    json.dump(asyncio.run(main(sys.argv[1])), sys.stdout, ensure_ascii=False)
