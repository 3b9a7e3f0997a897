/**
 * The conformance suite's errors tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { StorageDriver } from '@x/storage-driver-core';
import {
  encodePayload,
  type Payload,
  StorageDriverClaim,
  StorageDriverErrorCode,
  sha256Hex,
} from '@x/storage-driver-core';
import { assertPayloadEqual, assertRejectsWithCode, makePayload, pseudoRandomBytes } from '../assertions';
import { claimHash, cloneClaim, rewriteClaim, type SuiteContext } from '../context';

/** Registers the errors tests of the conformance suite (called inside its describe block). */
export function registerErrorTests<D extends StorageDriver>(ctx: SuiteContext<D>): void {
  const { it, skip, caps, hooks, create } = ctx;
  if (caps.coreClaims) {
    it('a claim for an object that was never stored → E_NOT_FOUND', async () => {
      const d = await create();
      const [claim] = await d.store({}, [makePayload('present')]);
      assert.ok(claim);
      const forged = rewriteClaim(claim, claimHash(claim), sha256Hex(new TextEncoder().encode('never stored')));
      await assertRejectsWithCode(d.retrieve({}, [forged]), StorageDriverErrorCode.NOT_FOUND);
    });
  }
  if (hooks.remove) {
    it('a deleted object → E_NOT_FOUND (whole batch fails)', async () => {
      const d = await create();
      const claims = await d.store({}, [makePayload('keep'), makePayload('delete me')]);
      await hooks.remove?.(d, claims[1] as StorageDriverClaim);
      await assertRejectsWithCode(d.retrieve({}, claims), StorageDriverErrorCode.NOT_FOUND);
    });
  } else skip('a deleted object → E_NOT_FOUND', 'hooks.remove not provided');
  if (hooks.corrupt) {
    it('tampered stored bytes → E_INTEGRITY', async () => {
      const d = await create();
      const [claim] = await d.store({}, [makePayload(pseudoRandomBytes(2048, 11))]);
      await hooks.corrupt?.(d, claim as StorageDriverClaim);
      await assertRejectsWithCode(d.retrieve({}, [claim as StorageDriverClaim]), StorageDriverErrorCode.INTEGRITY);
    });
  } else skip('tampered stored bytes → E_INTEGRITY', 'hooks.corrupt not provided');

  if (caps.coreClaims) {
    it('a claim whose hash does not match the object → E_INTEGRITY', async () => {
      const d = await create();
      const [claim] = await d.store({}, [makePayload('one')]);
      const other = sha256Hex(encodePayload(makePayload('two')));
      const wrong = cloneClaim(claim as StorageDriverClaim, { hash_value: other });
      await assertRejectsWithCode(d.retrieve({}, [wrong]), StorageDriverErrorCode.INTEGRITY);
    });
    it('missing, unknown or malformed hash fields → E_INVALID_CLAIM', async () => {
      const d = await create();
      const [claim] = await d.store({}, [makePayload('hash')]);
      const c = claim as StorageDriverClaim;
      const variants: [string, StorageDriverClaim][] = [
        ['no hash_algorithm', cloneClaim(c, { hash_algorithm: undefined, hashAlgorithm: undefined })],
        ['no hash_value', cloneClaim(c, { hash_value: undefined, hashValue: undefined })],
        ['unknown algorithm', cloneClaim(c, { hash_algorithm: 'md5' })],
        ['upper-case SHA256', cloneClaim(c, { hash_algorithm: 'SHA256' })],
        ['short digest', cloneClaim(c, { hash_value: 'abc' })],
        ['upper-case digest', cloneClaim(c, { hash_value: claimHash(c).toUpperCase() })],
      ];
      for (const [why, v] of variants)
        await assertRejectsWithCode(d.retrieve({}, [v]), StorageDriverErrorCode.INVALID_CLAIM, why);
    });
    it('accepts camelCase hashAlgorithm/hashValue (official TypeScript S3 driver spelling)', async () => {
      const d = await create();
      const p = makePayload('camel');
      const [claim] = await d.store({}, [p]);
      const c = claim as StorageDriverClaim;
      const camel = cloneClaim(c, {
        hash_algorithm: undefined,
        hash_value: undefined,
        hashAlgorithm: 'sha256',
        hashValue: claimHash(c),
      });
      const [back] = await d.retrieve({}, [camel]);
      assertPayloadEqual(back as Payload, p);
    });
  }
  if (caps.coreClaims && caps.strictClaimKeys) {
    it('hostile claim keys → E_INVALID_CLAIM', async () => {
      const d = await create();
      const [claim] = await d.store({}, [makePayload('target')]);
      const c = claim as StorageDriverClaim;
      const k = caps.claimKeyField;
      const key = c.claimData[k] as string;
      const hash = claimHash(c);
      const hostile = [
        '../../../../etc/passwd',
        '/etc/passwd',
        `/${key}`,
        `../${key}`,
        `v0/../../../../etc/passwd`,
        `${key}/../../../../etc/passwd`,
        `v0/d/sha256/../../../${hash}`,
        'C:\\Windows\\win.ini',
        `v0\\d\\sha256\\${hash}`,
        `${key}\u0000`,
        'x'.repeat(100_000),
        '',
      ];
      for (const h of hostile) {
        await assertRejectsWithCode(
          d.retrieve({}, [cloneClaim(c, { [k]: h })]),
          StorageDriverErrorCode.INVALID_CLAIM,
          `key ${JSON.stringify(h.slice(0, 60))}`,
        );
      }
      await assertRejectsWithCode(
        d.retrieve({}, [cloneClaim(c, { [k]: undefined })]),
        StorageDriverErrorCode.INVALID_CLAIM,
        'missing key',
      );
      for (const [i, extra] of (hooks.hostileClaims?.(c) ?? []).entries()) {
        await assertRejectsWithCode(
          d.retrieve({}, [extra]),
          StorageDriverErrorCode.INVALID_CLAIM,
          `hooks.hostileClaims #${i}`,
        );
      }
    });
    it('malformed claim maps → E_INVALID_CLAIM, and one bad claim fails the batch before any read', async () => {
      const d = await create();
      const claims = await d.store({}, [makePayload('good')]);
      const bad = [
        { claimData: null },
        { claimData: [] },
        {
          claimData: { key: 42, hash_algorithm: 'sha256', hash_value: claimHash(claims[0] as StorageDriverClaim) },
        },
        {},
      ] as unknown as StorageDriverClaim[];
      for (const [i, b] of bad.entries()) {
        await assertRejectsWithCode(
          d.retrieve({}, [...claims, b]),
          StorageDriverErrorCode.INVALID_CLAIM,
          `malformed claim #${i}`,
        );
      }
    });
    if (hooks.plantOutside) {
      it('nothing outside the store is read through a claim', async () => {
        const d = await create();
        const planted = makePayload('outside the store');
        const bytes = encodePayload(planted);
        const keys = await hooks.plantOutside?.(d, bytes);
        const [claim] = await d.store({}, [makePayload('inside')]);
        for (const key of keys ?? []) {
          const forged = new StorageDriverClaim({
            ...(claim as StorageDriverClaim).claimData,
            [caps.claimKeyField]: key,
            hash_algorithm: 'sha256',
            hash_value: sha256Hex(bytes),
          });
          await assertRejectsWithCode(
            d.retrieve({}, [forged]),
            StorageDriverErrorCode.INVALID_CLAIM,
            `planted key ${key}`,
          );
        }
      });
    } else skip('nothing outside the store is read', 'hooks.plantOutside not provided');
  }
  it('misuse of the API is a TypeError', async () => {
    const d = await create();
    await assert.rejects(d.store({}, 'nope' as unknown as Payload[]), TypeError);
    await assert.rejects(d.retrieve({}, {} as unknown as StorageDriverClaim[]), TypeError);
    await assert.rejects(d.store({}, [{ data: 'not bytes' } as unknown as Payload]), TypeError);
  });
}
