/**
 * Backend-side half of "nothing torn is readable" in the fault tests: every stored value hashes to the digest its key names
 * (the claim-side half, `expectedClaims` and `countPresentExact`, is in @x/storage-driver-test-suite).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Every key under `prefix:` whose value does not hash to the sha256 its key ends with (none expected). */
export async function tornValues(admin: Redis, prefix: string): Promise<string[]> {
  const torn: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const value = await admin.getBuffer(key);
      const digest = createHash('sha256')
        .update(value ?? Buffer.alloc(0))
        .digest('hex');
      if (!key.endsWith(`:sha256:${digest}`)) torn.push(key);
    }
  } while (cursor !== '0');
  return torn;
}
