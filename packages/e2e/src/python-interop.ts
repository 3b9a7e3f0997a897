/**
 * Fixtures and helpers shared by the Python interop tests: the request/response of
 * `python/interop.py`, and the targets and values both languages offload.
 */
import type { Payload } from '@temporalio/common';
import type { StorageDriverTargetInfo } from '@x/storage-driver-core';
import { payloadFromBase64, payloadToBase64, runPythonJson } from './python';

export * from './python';

/** Where `python/interop.py` stores: the official Python S3 driver, or the sample-layout Redis driver. */
export type PythonInteropBackend =
  | { readonly driver: 's3'; readonly s3: { readonly endpoint: string; readonly bucket: string } }
  | { readonly driver: 'redis'; readonly redis: { readonly url: string; readonly keyPrefix: string } };

/** Values Python encodes for one target (one `DataConverter.encode` call). */
export interface PythonEncodeCase {
  /** JSON values (encoded by Python's default payload converter). */
  readonly values: readonly unknown[];
  /** The workflow/activity the payloads are stored for, or `null` (no target). */
  readonly target: StorageDriverTargetInfo | null;
}

/** What Python's `DataConverter.encode` produced for one {@link PythonEncodeCase}. */
export interface PythonEncoded {
  /** The payloads after external storage (references above the threshold, inline below). */
  readonly payloads: Payload[];
  /** The same values' payloads before external storage (what a driver stores). */
  readonly originals: Payload[];
}

/**
 * Encodes each case with Python's `DataConverter` + `ExternalStorage(payload_size_threshold=threshold)`
 * on `backend`, the store context bound to the case's target.
 */
export async function pythonEncode(
  backend: PythonInteropBackend,
  threshold: number,
  cases: readonly PythonEncodeCase[],
): Promise<PythonEncoded[]> {
  const out = await runPythonJson<{ cases: { payloads: string[]; originals: string[] }[] }>('interop.py', ['encode'], {
    ...backend,
    threshold,
    cases,
  });
  return out.cases.map((c) => ({
    payloads: c.payloads.map(payloadFromBase64),
    originals: c.originals.map(payloadFromBase64),
  }));
}

/** Decodes each list of payloads with Python's `DataConverter` + `ExternalStorage` on `backend`; returns the values. */
export async function pythonDecode(
  backend: PythonInteropBackend,
  payloadLists: readonly (readonly Payload[])[],
): Promise<unknown[][]> {
  const out = await runPythonJson<{ cases: { values: unknown[] }[] }>('interop.py', ['decode'], {
    ...backend,
    threshold: 0,
    cases: payloadLists.map((payloads) => ({ payloads: payloads.map(payloadToBase64) })),
  });
  return out.cases.map((c) => c.values);
}

/** A run id (both SDKs write it as is). */
export const INTEROP_RUN_ID = '6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b';

/**
 * Targets whose ids need escaping. `workflow` and `activity` use only characters that every
 * layout escapes the same way; `tilde` has the characters where Python's `urllib.parse.quote`
 * (Redis sample layout) and the S3 key spec differ (`~` raw vs `%7E`; `!*'()` escaped vs raw).
 */
export const INTEROP_TARGETS = {
  workflow: {
    kind: 'workflow',
    namespace: 'payments prod',
    type: 'Charge/Workflow',
    id: 'order+123=abc é 日本:1',
    runId: INTEROP_RUN_ID,
  },
  activity: { kind: 'activity', namespace: 'payments prod', type: 'Capture/Charge', id: 'activity id+42' },
  tilde: { kind: 'workflow', namespace: 'ns~1', type: "W!*'()", id: '~user', runId: INTEROP_RUN_ID },
  /** A workflow id whose key is over 1024 bytes: S3 drivers write `v0/ns/{ns}/d/sha256/{hex}`. */
  longId: {
    kind: 'workflow',
    namespace: 'payments prod',
    type: 'W',
    id: `order-${'x'.repeat(1100)}`,
    runId: INTEROP_RUN_ID,
  },
  /** Non-ASCII: 400 characters, 1,200 encoded bytes (the limit counts bytes of the encoded key). */
  longUnicodeActivity: {
    kind: 'activity',
    namespace: 'default',
    type: 'A',
    id: 'é'.repeat(400),
    runId: INTEROP_RUN_ID,
  },
  /** No run id (a client-side store before a run exists): the literal `null`. */
  emptyRun: { kind: 'workflow', namespace: 'default', type: 'W', id: 'wf-1', runId: '' },
  /** An empty namespace: `ns/null` for the S3 drivers; the Python Redis sample drops `ns/…`. */
  emptyNamespace: { kind: 'activity', namespace: '', type: 'A', id: 'act-1', runId: INTEROP_RUN_ID },
} as const satisfies Record<string, StorageDriverTargetInfo>;

/** A JSON value of roughly `size` bytes with unicode text (so above a small threshold). */
export function interopValue(label: string, size = 4096): Record<string, unknown> {
  return {
    label,
    greeting: 'héllo wörld — 日本語 — 🚀 — \u0000 nul',
    numbers: [0, -1, 2 ** 40, 123456789],
    nested: { ok: true, none: null, quote: '"\'\\' },
    padding: 'ü-'.repeat(Math.ceil(size / 2)),
  };
}
