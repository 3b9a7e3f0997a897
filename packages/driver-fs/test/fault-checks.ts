/**
 * Backend-side half of "nothing torn is readable" in the fault tests: every payload file hashes to the digest its path names
 * (the claim-side half, `expectedClaims` and `countPresentExact`, is in @x/storage-driver-test-suite).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { listFiles } from './helpers';

/** Payload files under `root` whose content does not hash to the sha256 their path ends with (none expected). */
export async function tornFiles(root: string): Promise<string[]> {
  const torn: string[] = [];
  for (const file of await listFiles(path.join(root, 'v0'))) {
    const digest = createHash('sha256')
      .update(await readFile(path.join(root, 'v0', file)))
      .digest('hex');
    if (!file.endsWith(`/${digest}`)) torn.push(file);
  }
  return torn;
}
