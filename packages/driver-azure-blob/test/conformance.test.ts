/**
 * The shared conformance suite against Azurite: every `create()` gets a container of its own; a
 * test's containers are deleted once its last driver is destroyed.
 */
import { afterAll, afterEach, beforeEach, describe, it } from '@jest/globals';
import { StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import { AZURE_MIN_REFRESH_AFTER, AzureBlobStorageDriver, azureMinimumDeleteAge } from '../src';
import { createContainer, deleteContainer, listNames, makeService } from './helpers';

const service = makeService();
/**
 * The smallest `refreshAfter` (Azure times have 1 s resolution), so that the lifecycle group,
 * which has to wait for blobs to age, waits as little as it can: blobs are refreshed by a dedup
 * hit once older than 1 s, and can be deleted once older than the minimum delete age (2.25 s).
 */
const REFRESH_AFTER = AZURE_MIN_REFRESH_AFTER;
const MINIMUM_DELETE_AGE = azureMinimumDeleteAge(REFRESH_AFTER);
/** Every container the current test created, deleted after it. */
const testContainers: string[] = [];
let live = 0;
const containerOf = (driver: AzureBlobStorageDriver) => driver.allowedContainers[0] as string;

async function cleanupTest(): Promise<void> {
  for (const c of testContainers.splice(0)) await deleteContainer(service, c);
}

afterEach(async () => {
  if (live === 0) await cleanupTest();
});
afterAll(cleanupTest);

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'azure.blobdriver',
    defaultName: 'azure.blobdriver',
    capabilities: {
      // Azurite accepts names longer than Azure's 1,024 characters: have the suite check it.
      maxClaimKeyBytes: 1024,
      lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'exact' },
      // Last-Modified is the service's own clock, to the second; it cannot be faked, so the group waits.
      timeResolution: 1000,
      lifecycleOlderThan: MINIMUM_DELETE_AGE + 50,
    },
    async create(options) {
      const container = await createContainer(service, 'conf');
      testContainers.push(container.containerName);
      const driver = new AzureBlobStorageDriver({
        client: service,
        container: container.containerName,
        refreshAfter: REFRESH_AFTER,
        ...options,
      });
      live++;
      return driver;
    },
    reopen: (driver) => {
      live++;
      // Another process with a ContainerClient instead of the BlobServiceClient.
      return new AzureBlobStorageDriver({
        client: service.getContainerClient(containerOf(driver)),
        name: driver.name,
        refreshAfter: driver.refreshAfter,
      });
    },
    async destroy() {
      if (--live > 0) return;
      await cleanupTest();
    },
    hooks: {
      async corrupt(_driver, claim) {
        const { container, key } = claim.claimData as { container: string; key: string };
        const blob = service.getContainerClient(container).getBlockBlobClient(key);
        const bytes = await blob.downloadToBuffer();
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
        await blob.upload(bytes, bytes.length);
      },
      async remove(_driver, claim) {
        const { container, key } = claim.claimData as { container: string; key: string };
        await service.getContainerClient(container).getBlockBlobClient(key).delete();
      },
      async countObjects(driver) {
        return (await listNames(service.getContainerClient(containerOf(driver)))).length;
      },
      hostileClaims(valid) {
        const d = valid.claimData;
        const h = d.hash_value as string;
        const key = (middle: string) => `v0/ns/a/wt/T/wi/${middle}/ri/R/d/sha256/${h}`;
        return [
          new StorageDriverClaim({ ...d, container: 'another-container' }),
          new StorageDriverClaim({ ...d, container: `${d.container}/..` }),
          new StorageDriverClaim({ ...d, container: `${d.container}?comp=list` }),
          new StorageDriverClaim({ ...d, container: '$root' }),
          new StorageDriverClaim({ ...d, container: (d.container as string).toUpperCase() }),
          new StorageDriverClaim({ ...d, container: '' }),
          // Dot segments the client would resolve, and names it would rewrite.
          new StorageDriverClaim({ ...d, key: key('..') }),
          new StorageDriverClaim({ ...d, key: key('.') }),
          new StorageDriverClaim({ ...d, key: key('a.') }),
          new StorageDriverClaim({ ...d, key: key('a\\b') }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/wi/x/../../../../../../../d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `v0/../v0/d/sha256/${h}` }),
          // Spellings this driver never writes: lower-case or needless escapes, raw characters.
          new StorageDriverClaim({ ...d, key: key('%2e%2e') }),
          new StorageDriverClaim({ ...d, key: key('%41') }),
          new StorageDriverClaim({ ...d, key: key('a b') }),
          new StorageDriverClaim({ ...d, key: key('é') }),
          new StorageDriverClaim({ ...d, key: key('I%2') }),
          new StorageDriverClaim({ ...d, key: key('') }),
          new StorageDriverClaim({ ...d, key: key('I\r\nX-Evil: 1') }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/ai/I/ri/R/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `./v0/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `/v0/d/sha256/${h}` }),
          // Over Azure's 1,024-character limit (Azurite would accept it).
          new StorageDriverClaim({ ...d, key: key('x'.repeat(1000)) }),
        ];
      },
      async plantOutside(driver, bytes) {
        // The payload under a valid name in another container the credentials reach, and at the
        // root of the driver's own container.
        const other = await createContainer(service, 'outside');
        testContainers.push(other.containerName);
        const hex = sha256Hex(bytes);
        const name = `v0/d/sha256/${hex}`;
        await other.getBlockBlobClient(name).upload(bytes, bytes.length);
        await service.getContainerClient(containerOf(driver)).getBlockBlobClient(hex).upload(bytes, bytes.length);
        return [
          `../${other.containerName}/${name}`,
          `/${other.containerName}/${name}`,
          hex,
          `v0/../${hex}`,
          `v0/d/sha256/../../${hex}`,
          `v0/d/sha256/%2E%2E/%2E%2E/${hex}`,
        ];
      },
    },
  },
);
