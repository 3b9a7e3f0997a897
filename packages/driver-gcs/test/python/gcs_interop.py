"""Store or retrieve payloads with Temporal's official Python GCS driver (temporalio 1.35,
``temporalio.contrib.gcp.gcsdriver`` over gcloud-aio-storage), for the TypeScript driver's interop test.

    python gcs_interop.py store < request.json > response.json
    python gcs_interop.py retrieve < request.json > response.json

Request: {"endpoint": "http://127.0.0.1:4453", "bucket": str, ...}
- store: "cases": [{"target": TARGET | null, "payloads": [b64 Payload proto]}];
  the answer per case is {"claims": [claim_data]}.
- retrieve: "claims": [claim_data]; the answer is {"payloads": [b64 Payload proto]}.
TARGET: {"kind": "workflow" | "activity", "namespace", "id"?, "runId"?, "type"?}.
Errors are answered as {"error": "TypeName: message"} (exit status 0), so the test can assert them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any

from gcloud.aio.storage import Storage
from temporalio.api.common.v1 import Payload
from temporalio.contrib.gcp.gcsdriver import GCSStorageDriver
from temporalio.contrib.gcp.gcsdriver.gcloud_aio import new_gcloud_aio_client
from temporalio.converter import (
    StorageDriverActivityInfo,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
)


def to_target(t: dict[str, Any] | None) -> StorageDriverWorkflowInfo | StorageDriverActivityInfo | None:
    if t is None:
        return None
    cls = StorageDriverWorkflowInfo if t["kind"] == "workflow" else StorageDriverActivityInfo
    return cls(namespace=t["namespace"], id=t.get("id"), run_id=t.get("runId"), type=t.get("type"))


def from_b64(text: str) -> Payload:
    payload = Payload()
    payload.ParseFromString(base64.b64decode(text))
    return payload


async def main(mode: str) -> dict[str, Any]:
    request = json.load(sys.stdin)
    # api_root points gcloud-aio-storage at the emulator (no credentials, plain http).
    async with Storage(api_root=request["endpoint"]) as storage:
        driver = GCSStorageDriver(client=new_gcloud_aio_client(storage), bucket=request["bucket"])
        try:
            if mode == "store":
                answers = []
                for case in request["cases"]:
                    context = StorageDriverStoreContext(target=to_target(case["target"]))
                    claims = await driver.store(context, [from_b64(p) for p in case["payloads"]])
                    answers.append({"claims": [dict(c.claim_data) for c in claims]})
                return {"cases": answers, "type": driver.type(), "name": driver.name()}
            claims = [StorageDriverClaim(claim_data=c) for c in request["claims"]]
            payloads = await driver.retrieve(StorageDriverRetrieveContext(), claims)
            return {"payloads": [base64.b64encode(p.SerializeToString()).decode() for p in payloads]}
        except Exception as e:  # noqa: BLE001 - reported to the test
            return {"error": f"{type(e).__name__}: {e}"}


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("store", "retrieve"):
        sys.exit(__doc__)
    json.dump(asyncio.run(main(sys.argv[1])), sys.stdout, ensure_ascii=False)
