// Free identifiers of the suite README's block (scripts/release/check-snippets.mjs): one per line.
// @module ../src/index.js = import type { ContentAddressedStorageDriverOptions, StorageDriver } from '@x/storage-driver-core'; export interface MyStorageDriver extends StorageDriver { readonly prefix: string } export declare const MyStorageDriver: new (options: ContentAddressedStorageDriverOptions & { client: object; prefix: string }) => MyStorageDriver;
declare const client: object;
