// Free identifiers of the root README's blocks (scripts/release/check-snippets.mjs): one per line.
// @run 1
// @env REDIS_URL=XSTORAGE_REDIS_URL
// @env AUDIT_DB=XSTORAGE_POSTGRES_URL
declare const connection: import('@temporalio/client').Connection;
declare const workflowsPath: string;
declare const activities: object;
interface KvClient { setManyIfAbsent(entries: [string, Uint8Array][], options: { signal: AbortSignal }): Promise<void>; getMany(keys: string[], options: { signal: AbortSignal }): Promise<(Uint8Array | undefined)[]>; }
declare const KvStorageDriver: new (kv: object, options?: import('@x/storage-driver-core').ContentAddressedStorageDriverOptions) => import('@x/storage-driver-core').ContentAddressedStorageDriver;
declare function freshIsolatedClient(): object;
