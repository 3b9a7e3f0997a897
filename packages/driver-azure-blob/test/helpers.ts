/** Shared helpers for the driver-azure-blob tests: clients of Azurite, per-test containers. */
import { BlobServiceClient, type ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { afterAll, beforeAll } from '@jest/globals';
import type { Payload, StorageDriverErrorCode } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { FaultProxy, type InjectedResponse, type ProxiedRequest, uniqueName } from '@x/test-servers';

/** Azurite's development account name (`bash scripts/services.sh env`). */
export const ACCOUNT = process.env.XSTORAGE_AZURITE_ACCOUNT_NAME ?? 'devstoreaccount1';
/** Azurite's public development account key (documented by Microsoft; not a secret). */
export const ACCOUNT_KEY =
  process.env.XSTORAGE_AZURITE_ACCOUNT_KEY ??
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/** Azurite's blob endpoint, with the account in the path. */
export const BLOB_ENDPOINT = process.env.XSTORAGE_AZURITE_BLOB_ENDPOINT ?? `http://127.0.0.1:10010/${ACCOUNT}`;

/** A connection string for `endpoint` (default: Azurite). */
export function connectionString(endpoint = BLOB_ENDPOINT): string {
  return `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=${endpoint};`;
}

/**
 * Client retries for tests: 3 tries 20-100 ms apart (the client's default waits 4 s, 8 s, 16 s
 * between its 4 tries, which would make every fault test take half a minute).
 */
export const TEST_RETRIES: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, retryDelayInMs: 20, maxRetryDelayInMs: 100 },
};

/** A BlobServiceClient of `endpoint` (default: Azurite) with fast retries. */
export function makeService(
  endpoint = BLOB_ENDPOINT,
  options: StoragePipelineOptions = TEST_RETRIES,
): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(connectionString(endpoint), options);
}

/** Creates a fresh container (a {@link uniqueName}: lower-case, ≤ 63 chars) and returns its client. */
export async function createContainer(service: BlobServiceClient, prefix = 'xaz'): Promise<ContainerClient> {
  const container = service.getContainerClient(uniqueName(prefix, { lowerCase: true, maxLength: 63 }));
  await container.create();
  return container;
}

/** Deletes a container (Azurite keeps everything in memory, so do clean up). */
export async function deleteContainer(service: BlobServiceClient, name: string): Promise<void> {
  await service.getContainerClient(name).deleteIfExists();
}

/** Every blob name of a container, sorted. */
export async function listNames(container: ContainerClient): Promise<string[]> {
  const names: string[] = [];
  for await (const b of container.listBlobsFlat()) names.push(b.name);
  return names.sort();
}

const encoder = new TextEncoder();

/** A JSON payload with the given text. */
export function payload(text: string): Payload {
  return { metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(JSON.stringify(text)) };
}

/** Runs `fn` and returns the StorageDriverError code it rejects with (fails if it resolves). */
export async function errorCode(fn: () => Promise<unknown>): Promise<StorageDriverErrorCode> {
  return (await captureStorageDriverError(fn)).code;
}

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export { captureStorageDriverError } from '@x/storage-driver-test-suite';

/** A BlobServiceClient that talks to Azurite through `proxy` (a `FaultProxy` in front of Azurite). */
export function proxiedService(proxy: FaultProxy, options: StoragePipelineOptions = TEST_RETRIES): BlobServiceClient {
  return makeService(`${proxy.endpoint}/${ACCOUNT}`, options);
}

/** The proxy of a test file and a BlobServiceClient that goes through it (set once `beforeAll` ran). */
export interface ProxyFixture {
  /** A `FaultProxy` in front of Azurite. */
  readonly proxy: FaultProxy;
  /** A client whose requests go through {@link ProxyFixture.proxy}. */
  readonly client: BlobServiceClient;
}

/** Starts a `FaultProxy` in front of Azurite for the calling test file (stopped after it). */
export function useProxy(): ProxyFixture {
  const fixture = {} as { proxy: FaultProxy; client: BlobServiceClient };
  beforeAll(async () => {
    fixture.proxy = await FaultProxy.start(new URL(BLOB_ENDPOINT).origin);
    fixture.client = proxiedService(fixture.proxy);
  });
  afterAll(async () => {
    await fixture.proxy.close();
  });
  return fixture;
}

/** An Azure error answer: the status, `x-ms-error-code` and the XML error body the service sends. */
export function azureError(status: number, code: string): InjectedResponse {
  return {
    status,
    headers: { 'x-ms-error-code': code, 'content-type': 'application/xml' },
    body: `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>injected by the test proxy</Message></Error>`,
  };
}

/**
 * The Blob service operation of a request as the proxy saw it (path-style, account first):
 * `PutBlob`, `SetBlobMetadata`, `GetBlobProperties`, `GetBlob`, `DeleteBlob`, `ListBlobs`,
 * `BlobBatch`, or `METHOD` for anything else.
 */
export function operation(r: ProxiedRequest): string {
  const comp = r.query.get('comp');
  switch (r.method) {
    case 'HEAD':
      return 'GetBlobProperties';
    case 'GET':
      return comp === 'list' ? 'ListBlobs' : 'GetBlob';
    case 'PUT':
      return comp === 'metadata' ? 'SetBlobMetadata' : comp === null ? 'PutBlob' : `PUT ${comp}`;
    case 'DELETE':
      return 'DeleteBlob';
    case 'POST':
      return comp === 'batch' ? 'BlobBatch' : 'POST';
    default:
      return r.method;
  }
}

/** Counts of {@link operation} over `requests`, e.g. `{ PutBlob: 1, GetBlobProperties: 1 }`. */
export function countOperations(requests: readonly ProxiedRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) {
    const op = operation(r);
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return counts;
}

/** Whether `r` addresses a blob of `container` (not the container itself). */
export function blobRequest(r: ProxiedRequest, container: string): boolean {
  return r.path.startsWith(`/${ACCOUNT}/${container}/`);
}
