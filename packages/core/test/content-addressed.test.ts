import {
  type BackendOperation,
  buildStorageKey,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  DEFAULT_MAX_PAYLOAD_SIZE,
  displayKey,
  encodedPayloadSize,
  encodePayload,
  type Payload,
  type PutOutcome,
  parseStorageKey,
  requireClaimField,
  STORAGE_OPERATION_REPORT,
  StorageDriverClaim,
  StorageDriverError,
  type StorageDriverStoreContext,
  type StorageDriverTargetInfo,
  type StorageLocation,
  type StorageOperationReport,
  type StoreItem,
  sha256Hex,
} from '../src';
import { bytesOf, deferred, expectCode, expectRejectsCode, Long, rejection, thrown, utf8 } from './helpers';

/** A content-addressed driver over a Map, counting every backend call. */
class MapDriver extends ContentAddressedStorageDriver {
  readonly type = 'test.mapdriver';
  readonly objects = new Map<string, Uint8Array>();
  readonly puts: StoreItem[][] = [];
  readonly gets: StorageLocation[][] = [];
  readonly ops: BackendOperation[] = [];
  /** Runs inside each backend call before it touches the map (to inject delays or failures). */
  hook: ((op: BackendOperation) => Promise<void>) | undefined;
  /** Overrides claim parsing (default: strict key check). */
  parseHook: ((claimData: Record<string, string>, index: number) => StorageLocation) | undefined;
  /** Overrides what `_get` returns. */
  getOverride: ((locations: StorageLocation[]) => unknown) | undefined;

  constructor(options: ContentAddressedStorageDriverOptions = {}) {
    super('map', options);
  }

  protected override _locate(key: string): StorageLocation {
    return { key };
  }

  protected override _claimFields(location: StorageLocation): Record<string, string> {
    return { key: location.key };
  }

  protected override _parseClaim(claimData: Record<string, string>, index: number): StorageLocation {
    if (this.parseHook) return this.parseHook(claimData, index);
    const key = requireClaimField(claimData, 'key', index);
    parseStorageKey(key);
    return { key };
  }

  // biome-ignore lint/suspicious/noConfusingVoidType: the hook's own return type
  protected async _putIfAbsent(items: StoreItem[], op: BackendOperation): Promise<void | readonly PutOutcome[]> {
    this.puts.push(items);
    this.ops.push(op);
    await this.hook?.(op);
    for (const item of items) {
      if (!this.objects.has(item.location.key)) this.objects.set(item.location.key, item.bytes.slice());
    }
  }

  protected async _get(locations: StorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    this.gets.push(locations);
    this.ops.push(op);
    await this.hook?.(op);
    if (this.getOverride) return this.getOverride(locations) as (Uint8Array | undefined)[];
    return locations.map((l) => this.objects.get(l.key));
  }
}

const json = (value: unknown): Payload => ({
  metadata: { encoding: utf8('json/plain') },
  data: utf8(JSON.stringify(value)),
});

const target: StorageDriverTargetInfo = {
  kind: 'workflow',
  namespace: 'payments prod',
  type: 'ChargeWorkflow',
  id: 'order+123=abc',
  runId: 'run-1',
};

function expectSamePayload(actual: Payload | undefined, expected: Payload): void {
  expect(actual).toBeDefined();
  const md = (p: Payload) =>
    Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, bytesOf(v)] as [string, number[]]));
  expect(md(actual ?? {})).toEqual(md(expected));
  expect(bytesOf(actual?.data)).toEqual(bytesOf(expected.data));
}

describe('construction', () => {
  it('uses the default name and maxPayloadSize, and both can be overridden', () => {
    const d = new MapDriver();
    expect(d.name).toBe('map');
    expect(d.type).toBe('test.mapdriver');
    expect(d.maxPayloadSize).toBe(DEFAULT_MAX_PAYLOAD_SIZE);
    const custom = new MapDriver({ name: 'map-2', maxPayloadSize: 10 });
    expect(custom.name).toBe('map-2');
    expect(custom.maxPayloadSize).toBe(10);
  });

  it('rejects an invalid name or maxPayloadSize with E_CONFIG', () => {
    expectCode(
      thrown(() => new MapDriver({ name: '' })),
      'E_CONFIG',
    );
    expectCode(
      thrown(() => new MapDriver({ name: 'a\nb' })),
      'E_CONFIG',
    );
    expectCode(
      thrown(() => new MapDriver({ maxPayloadSize: 0 })),
      'E_CONFIG',
    );
    expectCode(
      thrown(() => new MapDriver({ maxPayloadSize: 1.5 })),
      'E_CONFIG',
    );
  });
});

describe('store', () => {
  it('returns [] for an empty batch without calling the backend', async () => {
    const d = new MapDriver();
    await expect(d.store({}, [])).resolves.toEqual([]);
    await expect(d.store({ target }, [])).resolves.toEqual([]);
    expect(d.puts).toHaveLength(0);
  });

  it('throws TypeError for a non-array batch or non-Payload items', async () => {
    const d = new MapDriver();
    expect(await rejection(d.store({}, 'x' as unknown as Payload[]))).toBeInstanceOf(TypeError);
    expect(await rejection(d.store({}, [{ data: 'x' } as unknown as Payload]))).toBeInstanceOf(TypeError);
    expect(await rejection(d.store({}, [null as unknown as Payload]))).toBeInstanceOf(TypeError);
    expect(d.puts).toHaveLength(0);
  });

  it('returns one claim per payload, in order, shaped {key, hash_algorithm, hash_value}', async () => {
    const d = new MapDriver();
    const payloads = [json({ a: 1 }), json({ b: 2 }), {}];
    const claims = await d.store({ target }, payloads);
    expect(claims).toHaveLength(3);
    for (const [i, claim] of claims.entries()) {
      const p = payloads[i] as Payload;
      const bytes = encodePayload(p);
      const hex = sha256Hex(bytes);
      expect(claim).toBeInstanceOf(StorageDriverClaim);
      expect(claim.claimData).toEqual({ key: buildStorageKey(target, hex), hash_algorithm: 'sha256', hash_value: hex });
      expect(bytesOf(d.objects.get(buildStorageKey(target, hex)))).toEqual(bytesOf(bytes));
    }
    expect(claims[0]?.claimData['key']).toMatch(
      /^v0\/ns\/payments%20prod\/wt\/ChargeWorkflow\/wi\/order%2B123%3Dabc\/ri\/run-1\/d\/sha256\//,
    );
  });

  it('uses v0/d/sha256/<hex> without a target', async () => {
    const d = new MapDriver();
    const [claim] = await d.store({}, [json('x')]);
    expect(claim?.claimData['key']).toBe(`v0/d/sha256/${sha256Hex(encodePayload(json('x')))}`);
  });

  it('accepts an undefined context', async () => {
    const d = new MapDriver();
    const claims = await d.store(undefined as unknown as StorageDriverStoreContext, [json(1)]);
    expect(claims).toHaveLength(1);
  });

  it('writes identical payloads once per batch and gives them identical claims', async () => {
    const d = new MapDriver();
    const claims = await d.store({ target }, [json('same'), json('other'), json('same'), json('same')]);
    expect(d.puts).toHaveLength(1);
    expect(d.puts[0]).toHaveLength(2);
    expect(claims[0]?.claimData).toEqual(claims[2]?.claimData);
    expect(claims[0]?.claimData).toEqual(claims[3]?.claimData);
    expect(claims[0]).not.toBe(claims[2]);
    expect(claims[0]?.claimData).not.toEqual(claims[1]?.claimData);
  });

  it('hands the backend the exact serialized bytes, their sha256 and the location', async () => {
    const d = new MapDriver();
    const p = json({ hello: 'world' });
    await d.store({ target }, [p]);
    const item = d.puts[0]?.[0];
    expect(bytesOf(item?.bytes)).toEqual(bytesOf(encodePayload(p)));
    expect(item?.sha256).toBe(sha256Hex(encodePayload(p)));
    expect(item?.location.key).toBe(buildStorageKey(target, sha256Hex(encodePayload(p))));
    const op = d.ops[0];
    expect(op?.kind).toBe('store');
    expect(op?.driverName).toBe('map');
    expect(op?.signal).toBeInstanceOf(AbortSignal);
  });

  it("writes the official drivers' namespace digest key when the full key is over 1024 bytes, and reads it back", async () => {
    const d = new MapDriver();
    const longTarget: StorageDriverTargetInfo = {
      kind: 'workflow',
      namespace: 'payments',
      type: 'W',
      id: 'é'.repeat(400),
      runId: 'r',
    };
    const payload = json('long id');
    const hex = sha256Hex(encodePayload(payload));
    const claims = await d.store({ target: longTarget }, [payload, payload]);
    expect(claims.map((c) => c.claimData['key'])).toEqual([
      `v0/ns/payments/d/sha256/${hex}`,
      `v0/ns/payments/d/sha256/${hex}`,
    ]);
    expect(d.puts[0]).toHaveLength(1);
    expect(bytesOf((await d.retrieve({}, claims))[0]?.data)).toEqual(bytesOf(payload.data));
    // Exactly at the limit: the full key.
    const full = buildStorageKey({ ...longTarget, id: '' }, hex);
    const atLimit = { ...longTarget, id: 'i'.repeat(1024 - full.length + 4) };
    const [claim] = await d.store({ target: atLimit }, [payload]);
    expect(claim?.claimData['key']).toBe(buildStorageKey(atLimit, hex));
  });

  it('a driver can escape key segments its own way (GCS keeps Unicode), and the 1024 limit counts UTF-8 bytes', async () => {
    class KeepUnicode extends MapDriver {
      protected override _encodeKeySegment(value: string | undefined | null): string {
        return value ? value.replaceAll('/', '%2F') : 'null';
      }
      protected override _parseClaim(claimData: Record<string, string>): StorageLocation {
        return { key: claimData['key'] as string };
      }
    }
    const d = new KeepUnicode();
    const payload = json('unicode');
    const hex = sha256Hex(encodePayload(payload));
    const [short] = await d.store(
      { target: { kind: 'workflow', namespace: 'prod ns', type: 'a/b', id: '日本', runId: '' } },
      [payload],
    );
    expect(short?.claimData['key']).toBe(`v0/ns/prod ns/wt/a%2Fb/wi/日本/ri/null/d/sha256/${hex}`);
    // 340 × '日' is 340 characters but 1,020 bytes: over the limit with the rest of the key.
    const [long] = await d.store({ target: { kind: 'workflow', namespace: 'prod ns', id: '日'.repeat(340) } }, [
      payload,
    ]);
    expect(long?.claimData['key']).toBe(`v0/ns/prod ns/d/sha256/${hex}`);
    expect((await d.retrieve({}, [short as StorageDriverClaim, long as StorageDriverClaim])).length).toBe(2);
  });

  it('scopes keys by target: the same payload under two targets gets two keys', async () => {
    const d = new MapDriver();
    const [c1] = await d.store({ target }, [json(1)]);
    const [c2] = await d.store({ target: { ...target, id: 'another' } }, [json(1)]);
    expect(c1?.claimData['key']).not.toBe(c2?.claimData['key']);
    expect(c1?.claimData['hash_value']).toBe(c2?.claimData['hash_value']);
  });

  it('checks maxPayloadSize on every payload before any write: E_TOO_LARGE even if only the last is too big', async () => {
    const d = new MapDriver({ maxPayloadSize: 100 });
    const ok = { data: new Uint8Array(98) };
    const tooBig = { data: new Uint8Array(99) };
    expect(encodedPayloadSize(ok)).toBe(100);
    expect(encodedPayloadSize(tooBig)).toBe(101);
    const e = await expectRejectsCode(d.store({ target }, [ok, ok, tooBig]), 'E_TOO_LARGE');
    expect(e.index).toBe(2);
    expect(e.driverName).toBe('map');
    expect(e.retryable).toBe(false);
    expect(e.message).toContain('101');
    expect(d.puts).toHaveLength(0);
    expect(d.objects.size).toBe(0);
    // Exactly maxPayloadSize is fine.
    await expect(d.store({}, [ok])).resolves.toHaveLength(1);
  });

  it('wraps a non-StorageDriverError backend failure as retryable E_BACKEND with the cause', async () => {
    const d = new MapDriver();
    const cause = new Error('ECONNRESET');
    d.hook = async () => {
      throw cause;
    };
    const e = await expectRejectsCode(d.store({}, [json(1)]), 'E_BACKEND');
    expect(e).toBeInstanceOf(StorageDriverError);
    expect(e.retryable).toBe(true);
    expect(e.cause).toBe(cause);
    expect(e.driverName).toBe('map');
    expect(e.message).toContain('ECONNRESET');
  });

  it('wraps a thrown non-Error value too', async () => {
    const d = new MapDriver();
    d.hook = async () => {
      throw 'plain string';
    };
    const e = await expectRejectsCode(d.store({}, [json(1)]), 'E_BACKEND');
    expect(e.cause).toBe('plain string');
  });

  it('passes a StorageDriverError from the backend through, filling in the driver name', async () => {
    const d = new MapDriver();
    const original = new StorageDriverError('E_CONFIG', 'bucket does not exist');
    d.hook = async () => {
      throw original;
    };
    const e = await expectRejectsCode(d.store({}, [json(1)]), 'E_CONFIG');
    // Errors are immutable: the driver's name comes on a copy with the same message, flag and stack.
    expect([e.message, e.retryable, e.stack, e.driverName]).toEqual([original.message, false, original.stack, 'map']);
    expect(original.driverName).toBeUndefined();
    // One that already names its driver passes through as is.
    const named = new StorageDriverError('E_CONFIG', 'named', { driverName: 'other' });
    d.hook = async () => {
      throw named;
    };
    expect(await expectRejectsCode(d.store({}, [json(2)]), 'E_CONFIG')).toBe(named);
  });

  it('rejects E_ABORTED without a backend call for a pre-aborted signal', async () => {
    const d = new MapDriver();
    const c = new AbortController();
    c.abort();
    await expectRejectsCode(d.store({ abortSignal: c.signal }, [json(1)]), 'E_ABORTED');
    expect(d.puts).toHaveLength(0);
  });

  it('rejects E_ABORTED promptly when aborted during a slow backend call, and the backend sees the abort', async () => {
    const d = new MapDriver();
    const c = new AbortController();
    const backendSawAbort = deferred<void>();
    d.hook = (op) => {
      op.signal.addEventListener('abort', () => backendSawAbort.resolve(), { once: true });
      return new Promise<void>(() => {}); // never settles
    };
    setTimeout(() => c.abort(new Error('deadline')), 20);
    const started = Date.now();
    const e = await expectRejectsCode(d.store({ abortSignal: c.signal }, [json(1)]), 'E_ABORTED');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(e.driverName).toBe('map');
    await backendSawAbort.promise;
    expect(d.objects.size).toBe(0);
  });

  it('reports E_ABORTED, not E_BACKEND, when the backend fails because of the abort', async () => {
    const d = new MapDriver();
    const c = new AbortController();
    d.hook = (op) =>
      new Promise<void>((_resolve, reject) =>
        op.signal.addEventListener('abort', () => reject(new Error('AbortError: request aborted')), { once: true }),
      );
    setTimeout(() => c.abort(), 5);
    await expectRejectsCode(d.store({ abortSignal: c.signal }, [json(1)]), 'E_ABORTED');
  });
});

describe('store items: parts, size and bytes', () => {
  const concat = (parts: readonly Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));

  it('a payload with under 64 KiB of data is one part: bytes itself, size its length', async () => {
    const d = new MapDriver();
    const payload = json({ small: true });
    await d.store({}, [payload, { metadata: {}, data: new Uint8Array(64 * 1024 - 1).fill(1) }]);
    for (const [i, item] of (d.puts[0] as StoreItem[]).entries()) {
      expect(item.parts).toHaveLength(1);
      expect(item.parts[0]).toBe(item.bytes);
      expect(item.size).toBe(item.bytes.byteLength);
      expect(item.size).toBe(
        encodedPayloadSize([payload, { metadata: {}, data: new Uint8Array(64 * 1024 - 1) }][i] as Payload),
      );
    }
  });

  it('64 KiB of data or more: a header, the caller’s own data (not copied) and a trailer; bytes joined once, on first read', async () => {
    const d = new MapDriver();
    const data = new Uint8Array(64 * 1024).map((_, i) => i % 251);
    const withTrailer: Payload = {
      metadata: { encoding: utf8('binary/plain'), other: utf8('x') },
      data,
      externalPayloads: [{ sizeBytes: Long.fromNumber(5) }, {}],
    };
    const plain: Payload = { metadata: {}, data: Buffer.alloc(64 * 1024 + 1, 7).subarray(1) }; // a view at an offset
    // The base reads bytes only for what the backend asks: this backend reads nothing but parts.
    const seen: StoreItem[] = [];
    d.hook = async () => {
      seen.push(...(d.puts.at(-1) as StoreItem[]));
    };
    const claims = await d.store({}, [withTrailer, plain]);
    const [a, b] = seen as [StoreItem, StoreItem];
    expect(a.parts).toHaveLength(3);
    expect(a.parts[1]).toBe(data); // the same memory, not a copy
    expect(b.parts).toHaveLength(2);
    expect(b.parts[1]).toBe(plain.data);
    for (const [item, payload] of [
      [a, withTrailer],
      [b, plain],
    ] as const) {
      const expected = Buffer.from(encodePayload(payload));
      expect(item.size).toBe(expected.byteLength);
      expect(concat(item.parts).equals(expected)).toBe(true);
      expect(item.sha256).toBe(sha256Hex(expected));
      expect(Buffer.from(item.bytes).equals(expected)).toBe(true);
      expect(item.bytes).toBe(item.bytes); // joined once
      expect(item.bytes.buffer).not.toBe(data.buffer);
      // Spread (an own, enumerable getter) keeps the bytes.
      expect(Buffer.from({ ...item }.bytes).equals(expected)).toBe(true);
    }
    // What the backend stored reads back, checked against the claims' digests.
    const back = await d.retrieve({}, claims);
    expect(Buffer.from(back[0]?.data ?? []).equals(Buffer.from(data))).toBe(true);
    expect(back[0]?.externalPayloads).toHaveLength(2);
    expect(Buffer.from(back[1]?.data ?? []).equals(Buffer.from(plain.data ?? []))).toBe(true);
  });
});

describe('retrieve', () => {
  async function stored(payloads: Payload[], t: StorageDriverTargetInfo | undefined = target) {
    const d = new MapDriver();
    const claims = await d.store({ target: t }, payloads);
    return { d, claims };
  }

  it('returns [] for no claims without calling the backend', async () => {
    const d = new MapDriver();
    await expect(d.retrieve({}, [])).resolves.toEqual([]);
    expect(d.gets).toHaveLength(0);
  });

  it('round-trips payloads byte for byte, in claim order', async () => {
    const payloads = [json({ a: 1 }), { data: new Uint8Array([0, 255, 1]) }, {}, json('x')];
    const { d, claims } = await stored(payloads);
    const shuffled = [claims[3], claims[0], claims[2], claims[1]] as StorageDriverClaim[];
    const out = await d.retrieve({}, shuffled);
    expect(out).toHaveLength(4);
    expectSamePayload(out[0], payloads[3] as Payload);
    expectSamePayload(out[1], payloads[0] as Payload);
    expectSamePayload(out[2], payloads[2] as Payload);
    expectSamePayload(out[3], payloads[1] as Payload);
    expect(d.ops.at(-1)?.kind).toBe('retrieve');
  });

  it('fetches each distinct object once, and two claims to one object get independent byte arrays', async () => {
    const { d, claims } = await stored([json('shared')]);
    const claim = claims[0] as StorageDriverClaim;
    const out = await d.retrieve({}, [claim, new StorageDriverClaim({ ...claim.claimData }), claim]);
    expect(d.gets).toHaveLength(1);
    expect(d.gets[0]).toHaveLength(1);
    const [a, b, c] = out;
    expect(a?.data).not.toBe(b?.data);
    expect(a?.data?.buffer).not.toBe(b?.data?.buffer);
    expect(b?.data?.buffer).not.toBe(c?.data?.buffer);
    expect(a?.metadata?.['encoding']?.buffer).not.toBe(b?.metadata?.['encoding']?.buffer);
    const before = bytesOf(b?.data);
    if (a?.data) a.data[0] = 0;
    if (a?.metadata?.['encoding']) a.metadata['encoding'][0] = 0;
    expect(bytesOf(b?.data)).toEqual(before);
    expect(bytesOf(c?.data)).toEqual(before);
    expect(bytesOf(b?.metadata?.['encoding'])).toEqual(bytesOf(utf8('json/plain')));
  });

  it('gives independent byte arrays to two claims on one object when the backend returns Node Buffers', async () => {
    const { d, claims } = await stored([json('shared via Buffer')]);
    d.getOverride = (locations) => locations.map((l) => Buffer.from(d.objects.get(l.key) as Uint8Array));
    const claim = claims[0] as StorageDriverClaim;
    const [a, b] = await d.retrieve({}, [claim, claim]);
    expect(a?.data?.buffer).not.toBe(b?.data?.buffer);
    const before = bytesOf(b?.data);
    if (a?.data) a.data.fill(0);
    expect(bytesOf(b?.data)).toEqual(before);
  });

  it('accepts camelCase hash fields (official TS S3 driver claims)', async () => {
    const { d, claims } = await stored([json(1)]);
    const data = claims[0]?.claimData ?? {};
    const camel = new StorageDriverClaim({
      key: data['key'] ?? '',
      hashAlgorithm: 'sha256',
      hashValue: data['hash_value'] ?? '',
    });
    expectSamePayload((await d.retrieve({}, [camel]))[0], json(1));
  });

  it('detects tampered data with E_INTEGRITY', async () => {
    const { d, claims } = await stored([json({ amount: 100 })]);
    const key = claims[0]?.claimData['key'] ?? '';
    const bytes = d.objects.get(key) as Uint8Array;
    const tampered = bytes.slice();
    const at = tampered.length - 2;
    tampered[at] = (tampered[at] as number) ^ 1;
    d.objects.set(key, tampered);
    const e = await expectRejectsCode(d.retrieve({}, claims), 'E_INTEGRITY');
    expect(e.key).toBe(key);
    expect(e.index).toBe(0);
    expect(e.message).toContain(key);
    expect(e.retryable).toBe(false);
  });

  it('detects a claim whose hash does not match the stored object', async () => {
    const { d, claims } = await stored([json(1)]);
    const data = claims[0]?.claimData ?? {};
    const wrong = new StorageDriverClaim({ ...data, hash_value: sha256Hex(utf8('something else')) });
    const e = await expectRejectsCode(d.retrieve({}, [wrong]), 'E_INTEGRITY');
    // The key names another digest than the claim: refused before any request.
    expect(e.message).toContain('names');
    expect(d.gets).toHaveLength(0);
  });

  it('a claim whose hash matches neither its key nor an object is E_INTEGRITY, also for keys under a prefix', async () => {
    const d = new MapDriver();
    d.parseHook = (claimData) => ({ key: `prefix:${String(claimData['key']).split('/').join(':')}` });
    const hex = sha256Hex(utf8('x'));
    const claim = new StorageDriverClaim({
      key: buildStorageKey(undefined, sha256Hex(utf8('y'))),
      hash_algorithm: 'sha256',
      hash_value: hex,
    });
    await expectRejectsCode(d.retrieve({}, [claim]), 'E_INTEGRITY');
    expect(d.gets).toHaveLength(0);
  });

  it('reports E_INTEGRITY when hash-matching bytes are not a Payload', async () => {
    const d = new MapDriver();
    const garbage = Uint8Array.from([0x0a, 0x05, 0x0a]);
    const hex = sha256Hex(garbage);
    const key = buildStorageKey(undefined, hex);
    d.objects.set(key, garbage);
    const e = await expectRejectsCode(
      d.retrieve({}, [new StorageDriverClaim({ key, hash_algorithm: 'sha256', hash_value: hex })]),
      'E_INTEGRITY',
    );
    expect(e.key).toBe(key);
    expect(e.message).toContain(key);
    expect(e.driverName).toBe('map');
  });

  it('reports a missing object as E_NOT_FOUND with the key', async () => {
    const { d, claims } = await stored([json(1), json(2)]);
    const key = claims[1]?.claimData['key'] ?? '';
    d.objects.delete(key);
    const e = await expectRejectsCode(d.retrieve({}, claims), 'E_NOT_FOUND');
    expect(e.key).toBe(key);
    expect(e.index).toBe(1);
    expect(e.message).toContain(key);
    expect(e.driverName).toBe('map');
    expect(e.retryable).toBe(false);
  });

  const hex = sha256Hex(utf8('x'));
  const invalidClaims: [string, unknown][] = [
    ['no hash', { key: `v0/d/sha256/${hex}` }],
    ['unknown algorithm', { key: `v0/d/sha256/${hex}`, hash_algorithm: 'md5', hash_value: hex }],
    ['bad hex', { key: `v0/d/sha256/${hex}`, hash_algorithm: 'sha256', hash_value: 'abc' }],
    ['missing key', { hash_algorithm: 'sha256', hash_value: hex }],
    ['traversal key', { key: '../../etc/passwd', hash_algorithm: 'sha256', hash_value: hex }],
    ['absolute key', { key: '/etc/passwd', hash_algorithm: 'sha256', hash_value: hex }],
    ['non-string value', { key: 5, hash_algorithm: 'sha256', hash_value: hex }],
  ];

  it.each(invalidClaims)('rejects a claim with %s as E_INVALID_CLAIM without any backend call', async (_n, data) => {
    const { d, claims } = await stored([json(1)]);
    const bad = new StorageDriverClaim(data as Record<string, string>);
    const e = await expectRejectsCode(d.retrieve({}, [...claims, bad]), 'E_INVALID_CLAIM');
    expect(e.index).toBe(1);
    expect(d.gets).toHaveLength(0);
  });

  it('rejects claims without claimData as E_INVALID_CLAIM and non-object claims as TypeError', async () => {
    const d = new MapDriver();
    await expectRejectsCode(d.retrieve({}, [{} as StorageDriverClaim]), 'E_INVALID_CLAIM');
    expect(await rejection(d.retrieve({}, [null as unknown as StorageDriverClaim]))).toBeInstanceOf(TypeError);
    expect(await rejection(d.retrieve({}, 'x' as unknown as StorageDriverClaim[]))).toBeInstanceOf(TypeError);
    expect(d.gets).toHaveLength(0);
  });

  it('turns a non-StorageDriverError from _parseClaim into E_INVALID_CLAIM with the cause', async () => {
    const d = new MapDriver();
    const cause = new RangeError('bad bucket');
    d.parseHook = () => {
      throw cause;
    };
    const e = await expectRejectsCode(
      d.retrieve({}, [new StorageDriverClaim({ key: 'k', hash_algorithm: 'sha256', hash_value: hex })]),
      'E_INVALID_CLAIM',
    );
    expect(e.cause).toBe(cause);
    expect(e.driverName).toBe('map');
    expect(e.index).toBe(0);
  });

  it('wraps a non-StorageDriverError backend failure as retryable E_BACKEND with the cause', async () => {
    const { d, claims } = await stored([json(1)]);
    const cause = new Error('503 Service Unavailable');
    d.hook = async () => {
      throw cause;
    };
    const e = await expectRejectsCode(d.retrieve({}, claims), 'E_BACKEND');
    expect(e.retryable).toBe(true);
    expect(e.cause).toBe(cause);
    expect(e.driverName).toBe('map');
  });

  it('reports a backend returning the wrong number of objects as non-retryable E_BACKEND', async () => {
    const { d, claims } = await stored([json(1)]);
    d.getOverride = () => [];
    const e = await expectRejectsCode(d.retrieve({}, claims), 'E_BACKEND');
    expect(e.retryable).toBe(false);
    d.getOverride = () => 'nope';
    await expectRejectsCode(d.retrieve({}, claims), 'E_BACKEND');
  });

  it('treats null from the backend as not found', async () => {
    const { d, claims } = await stored([json(1)]);
    d.getOverride = () => [null];
    await expectRejectsCode(d.retrieve({}, claims), 'E_NOT_FOUND');
  });

  it('rejects E_ABORTED without a backend call for a pre-aborted signal', async () => {
    const { d, claims } = await stored([json(1)]);
    const c = new AbortController();
    c.abort();
    await expectRejectsCode(d.retrieve({ abortSignal: c.signal }, claims), 'E_ABORTED');
    expect(d.gets).toHaveLength(0);
  });

  it('rejects E_ABORTED promptly when aborted during a slow backend call', async () => {
    const { d, claims } = await stored([json(1)]);
    const c = new AbortController();
    d.hook = () => new Promise<void>(() => {}); // never settles
    setTimeout(() => c.abort(), 20);
    const started = Date.now();
    await expectRejectsCode(d.retrieve({ abortSignal: c.signal }, claims), 'E_ABORTED');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(d.ops.at(-1)?.signal.aborted).toBe(true);
  });
});

describe('displayKey', () => {
  it('quotes short keys in full and elides the middle of long ones, keeping the digest', () => {
    const short = `v0/d/sha256/${'a'.repeat(64)}`;
    expect(displayKey(short)).toBe(short);
    const long = `v0/ns/${'%C3%A9'.repeat(2000)}/d/sha256/${'b'.repeat(64)}`;
    const shown = displayKey(long);
    expect(shown.length).toBeLessThan(400);
    expect(shown.startsWith('v0/ns/%C3%A9')).toBe(true);
    expect(shown.endsWith(`/d/sha256/${'b'.repeat(64)}`)).toBe(true);
  });
});

describe('sparse arrays', () => {
  it('a hole in the claims array is API misuse (TypeError naming the index), not an internal crash', async () => {
    const d = new MapDriver();
    const claims = await d.store({}, [json('a')]);
    const sparse = new Array<StorageDriverClaim>(3);
    sparse[0] = claims[0] as StorageDriverClaim;
    sparse[2] = claims[0] as StorageDriverClaim;
    await expect(d.retrieve({}, sparse)).rejects.toThrow(/claims\[1\] must be an object/);
  });
});

describe('operation reports (STORAGE_OPERATION_REPORT)', () => {
  it('reports payloads, bytes, distinct objects, duplicates, existing objects, time and errors', async () => {
    const reports: StorageOperationReport[] = [];
    const reporter = (r: StorageOperationReport) => reports.push(r);
    class Reporting extends MapDriver {
      protected override async _putIfAbsent(items: StoreItem[], op: BackendOperation): Promise<PutOutcome[]> {
        const existed = items.map((i) =>
          this.objects.has(i.location.key) ? ('existed' as const) : ('written' as const),
        );
        await super._putIfAbsent(items, op);
        return existed;
      }
    }
    const d = new Reporting();
    const a = json('a');
    const b = json('bb');
    await d.store({}, [a]);
    const claims = await d.store({ target, [STORAGE_OPERATION_REPORT]: reporter } as StorageDriverStoreContext, [
      a,
      b,
      a,
      b,
      b,
    ]);
    const size = (p: Payload) => encodedPayloadSize(p);
    expect(reports[0]).toMatchObject({
      operation: 'store',
      driverName: 'map',
      driverType: 'test.mapdriver',
      target,
      payloads: 5,
      bytes: 2 * size(a) + 3 * size(b),
      objects: 2,
      objectBytes: size(a) + size(b),
      inBatchDuplicates: 3,
      existing: 0,
      error: undefined,
    });
    await d.store({ [STORAGE_OPERATION_REPORT]: reporter } as StorageDriverStoreContext, [a]);
    expect(reports[1]).toMatchObject({ payloads: 1, objects: 1, existing: 1 });
    await d.retrieve({ [STORAGE_OPERATION_REPORT]: reporter } as never, [
      claims[0] as StorageDriverClaim,
      claims[2] as StorageDriverClaim,
    ]);
    expect(reports[2]).toMatchObject({
      operation: 'retrieve',
      payloads: 2,
      objects: 1,
      bytes: 2 * size(a),
      existing: undefined,
    });
    expect(reports[2]?.durationMs).toBeGreaterThanOrEqual(0);
    d.objects.clear();
    await expectRejectsCode(d.retrieve({ [STORAGE_OPERATION_REPORT]: reporter } as never, claims), 'E_NOT_FOUND');
    expect(reports[3]?.error?.code).toBe('E_NOT_FOUND');
    // A reporter that throws changes nothing; without a reporter nothing is measured.
    await d.store(
      {
        [STORAGE_OPERATION_REPORT]: () => {
          throw new Error('x');
        },
      } as never,
      [a],
    );
    expect(reports).toHaveLength(4);
  });
});
