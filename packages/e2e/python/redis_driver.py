"""A small Redis storage driver with the key layout of Temporal's Python Redis sample.

Written for the interop tests (not a copy of the sample). Layout:

    {key_prefix}:v0[:ns:{ns}][:wt:{type}:wi:{id}:ri:{run}|:at:{type}:ai:{id}:ri:{run}]:d:sha256:{hex}

Every dynamic value is ``urllib.parse.quote(value, safe="")``; a missing or empty value is
``null`` (an empty namespace drops the ``ns`` pair). The value is the serialized ``Payload``
proto, written with ``SET key value NX [PX ttl]``. Claims are
``{key, hash_algorithm: "sha256", hash_value}``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from urllib.parse import quote

import redis.asyncio as redis
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    StorageDriver,
    StorageDriverActivityInfo,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
)


def _segment(value: str | None) -> str | None:
    return quote(value, safe="") if value else None


def sample_layout_key(
    prefix: str,
    target: StorageDriverWorkflowInfo | StorageDriverActivityInfo | None,
    digest: str,
) -> str:
    """The Redis key the sample layout gives a payload with SHA-256 ``digest``."""
    parts = ["v0"]
    if target is not None and target.namespace:
        parts += ["ns", _segment(target.namespace) or "null"]
    if target is not None:
        scope = ("wt", "wi") if isinstance(target, StorageDriverWorkflowInfo) else ("at", "ai")
        parts += [scope[0], _segment(target.type) or "null"]
        parts += [scope[1], _segment(target.id) or "null"]
        parts += ["ri", _segment(target.run_id) or "null"]
    parts += ["d", "sha256", digest]
    return ":".join([prefix, *parts]) if prefix else ":".join(parts)


class SampleLayoutRedisDriver(StorageDriver):
    """Stores payloads in Redis under the sample's key layout (driver name ``redis``)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key_prefix: str = "temporalio:payloads",
        driver_name: str = "redis",
        ttl_ms: int | None = None,
    ) -> None:
        self._client = client
        self._prefix = key_prefix.rstrip(":")
        self._name = driver_name
        self._ttl_ms = ttl_ms

    def name(self) -> str:
        return self._name

    def type(self) -> str:
        return "redis"

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        async def one(payload: Payload) -> StorageDriverClaim:
            data = payload.SerializeToString()
            digest = hashlib.sha256(data).hexdigest()
            key = sample_layout_key(self._prefix, context.target, digest)
            await self._client.set(key, data, nx=True, px=self._ttl_ms)
            return StorageDriverClaim(
                claim_data={"key": key, "hash_algorithm": "sha256", "hash_value": digest}
            )

        return list(await asyncio.gather(*(one(p) for p in payloads)))

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        async def one(claim: StorageDriverClaim) -> Payload:
            key = claim.claim_data["key"]
            data = await self._client.get(key)
            if data is None:
                raise LookupError(f"payload not found: {key}")
            if claim.claim_data.get("hash_algorithm") != "sha256":
                raise ValueError(f"unsupported hash algorithm in claim for {key}")
            if hashlib.sha256(data).hexdigest() != claim.claim_data.get("hash_value"):
                raise ValueError(f"integrity check failed for {key}")
            payload = Payload()
            payload.ParseFromString(data)
            return payload

        return list(await asyncio.gather(*(one(c) for c in claims)))
