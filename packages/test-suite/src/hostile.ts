/**
 * The hostile-input group of the conformance suite: property-based tests (fast-check) that feed
 * a driver generated hostile claims and hostile target ids.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  buildStorageKey,
  encodePayload,
  isStorageDriverError,
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  StorageDriverErrorCode,
  type StorageDriverTargetInfo,
  sha256Hex,
} from '@x/storage-driver-core';
import * as fc from 'fast-check';
import { assertPayloadEqual, makePayload } from './assertions';
import type { ConformanceCapabilities, StorageDriverHarnessHooks } from './harness';

/** Seed used when neither the harness nor `XSTORAGE_FC_SEED` sets one: CI runs are reproducible. */
export const DEFAULT_HOSTILE_INPUT_SEED = 20_261_125;
/** Runs of the hostile-claim property by default (the target property runs a quarter of it). */
export const DEFAULT_HOSTILE_INPUT_RUNS = 200;
/** Longest generated target id, in UTF-16 code units. */
export const MAX_HOSTILE_ID_LENGTH = 10_000;
/** Longest generated claim value, in UTF-16 code units. */
export const MAX_HOSTILE_CLAIM_VALUE_LENGTH = 100_000;

/**
 * Settings of the hostile-input group (`harness.hostileInput`). The environment variables
 * `XSTORAGE_FC_RUNS`, `XSTORAGE_FC_SEED` (a number, or `random`) and `XSTORAGE_FC_PATH` override
 * them, to explore more cases or replay a failure without editing the harness.
 */
export interface HostileInputOptions {
  /** Set `false` to skip the group (reported as skipped). Default: `true`. */
  enabled?: boolean;
  /**
   * Runs of the hostile-claim property; the hostile-target property runs a quarter of it
   * (at least 1), since each of its runs is a store and a retrieve. Default: 200.
   */
  numRuns?: number;
  /** fast-check seed. Default: {@link DEFAULT_HOSTILE_INPUT_SEED} (fixed, reproducible). */
  seed?: number;
  /** fast-check replay path of a failure (printed with the seed when a property fails). */
  path?: string;
}

/** Resolved settings of one property run. */
interface RunSettings {
  numRuns: number;
  seed: number;
  path: string | undefined;
}

function envNumber(name: string): number | undefined {
  const raw = typeof process === 'undefined' ? undefined : process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new TypeError(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** Resolves the settings: environment, then harness, then defaults. */
export function resolveHostileInputSettings(options: HostileInputOptions = {}): RunSettings & { enabled: boolean } {
  const env = typeof process === 'undefined' ? {} : process.env;
  const seed =
    env['XSTORAGE_FC_SEED'] === 'random'
      ? (Date.now() ^ (Math.random() * 0x100000000)) | 0
      : (envNumber('XSTORAGE_FC_SEED') ?? options.seed ?? DEFAULT_HOSTILE_INPUT_SEED);
  const numRuns = envNumber('XSTORAGE_FC_RUNS') ?? options.numRuns ?? DEFAULT_HOSTILE_INPUT_RUNS;
  if (numRuns < 1) throw new TypeError(`hostile input numRuns must be at least 1, got ${numRuns}`);
  const path = env['XSTORAGE_FC_PATH'] || options.path || undefined;
  return { enabled: options.enabled !== false, numRuns, seed, path };
}

const ellipsis = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max)}… (${s.length} chars)`);

/**
 * Runs an async property and, when it fails, throws an `AssertionError` naming the seed and the
 * replay path, the shrunk counterexample (abbreviated) and the failure, with the failure as `cause`.
 */
async function checkProperty<T>(
  title: string,
  property: fc.IAsyncPropertyWithHooks<[T]>,
  settings: RunSettings,
): Promise<void> {
  const details = await fc.check(property, {
    numRuns: settings.numRuns,
    seed: settings.seed,
    ...(settings.path === undefined ? {} : { path: settings.path }),
    // Long generated strings make shrinking against a real server slow; cap the whole run. A run
    // cut short before all its cases ran is a failure, not a pass (a counterexample found before
    // the cut is still reported as such, shrunk as far as time allowed).
    interruptAfterTimeLimit: 120_000,
    markInterruptAsFailure: true,
  });
  if (!details.failed) return;
  if (details.interrupted && details.counterexample === null) {
    throw new assert.AssertionError({
      message: `${title}: interrupted after ${details.numRuns} of ${settings.numRuns} runs (time limit 120 s); the property was not checked fully (seed ${details.seed})`,
    });
  }
  const path = details.counterexamplePath;
  const replay = `XSTORAGE_FC_SEED=${details.seed}${path ? ` XSTORAGE_FC_PATH=${path}` : ''}`;
  const error = details.errorInstance;
  const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const example = details.counterexample === null ? '(none)' : ellipsis(fc.stringify(details.counterexample[0]), 1500);
  throw new Error(
    [
      `${title}: property failed after ${details.numRuns} run(s) and ${details.numShrinks} shrink(s)`,
      `  failure: ${ellipsis(why, 2000)}`,
      `  counterexample: ${example}`,
      `  reproduce: ${replay}`,
      '  (or harness hostileInput: { seed, path } with the same values)',
    ].join('\n'),
    { cause: error },
  );
}

/** Collects unhandled promise rejections while `fn` runs (and one macrotask after it). */
async function withoutUnhandledRejections(fn: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  try {
    await fn();
    await new Promise<void>((resolve) => setTimeout(resolve, 10));
  } finally {
    process.off('unhandledRejection', listener);
  }
  assert.equal(
    seen.length,
    0,
    `unhandled promise rejection(s) during the property: ${seen.map((r) => (r instanceof Error ? r.message : String(r))).join('; ')}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/** Strings a path- or URL-handling backend may treat specially. */
const HOSTILE_PIECES = [
  '/',
  '\\',
  ':',
  '%',
  '~',
  '.',
  '..',
  '../',
  '..\\',
  '%2e%2e%2f',
  '%2E%2E%2F',
  '%2F',
  '%5C',
  '%00',
  '\u0000',
  '\n',
  '\r\n',
  ' ',
  '*',
  '?',
  '#',
  "'",
  '"',
  '\u200B', // zero-width space
  '\u200D', // zero-width joiner
  '\uFEFF', // byte order mark
  '\u202E', // right-to-left override
  'עברית',
  'العربية',
  '🚀',
  '👨‍👩‍👧',
  'e\u0301',
  'İ',
  'ß',
  '\uD800', // lone high surrogate
  '\uDFFF', // lone low surrogate
  '\uDBFF\uD800', // two high surrogates
];

/**
 * Any single code point, lone surrogates included. Same values as fast-check's `unit: 'binary'`,
 * which builds an ~80 MiB lookup table (about 1 s) the first time it is used: at module level
 * that cost fell on every importer of the suite.
 */
const anyCodePoint: fc.Arbitrary<string> = fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c));

/** One unit of a hostile id: any code point, a lone surrogate, or a hostile piece. */
const hostileUnit = fc.oneof(
  { weight: 3, arbitrary: anyCodePoint },
  { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_PIECES) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
);

/** A string of hostile units, repeated up to `length` code units. */
const repeatedTo = (unit: fc.Arbitrary<string>, min: number, max: number) =>
  fc
    .tuple(unit, fc.integer({ min, max }))
    .map(([s, n]) => (s.length === 0 ? 'x' : s).repeat(Math.ceil(n / Math.max(1, s.length))).slice(0, n));

/** Target ids: short hostile strings, fixed oddities, and long ones up to 10,000 characters. */
export function hostileIdArbitrary(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: hostileUnit, maxLength: 40 }) },
    { weight: 2, arbitrary: fc.constantFrom('', '.', '..', '/', '\\', 'null', '~', '%', ':', '\u0000', '\uD800') },
    { weight: 1, arbitrary: fc.string({ unit: anyCodePoint, minLength: 100, maxLength: 400 }) },
    { weight: 1, arbitrary: fc.string({ unit: hostileUnit, minLength: 1000, maxLength: MAX_HOSTILE_ID_LENGTH }) },
    {
      weight: 1,
      arbitrary: repeatedTo(fc.string({ unit: hostileUnit, minLength: 1, maxLength: 8 }), 1000, MAX_HOSTILE_ID_LENGTH),
    },
  );
}

/** Workflow and activity targets with hostile ids in every field (absent fields included). */
export function hostileTargetArbitrary(): fc.Arbitrary<StorageDriverTargetInfo> {
  const id = hostileIdArbitrary();
  return fc.record(
    {
      kind: fc.constantFrom('workflow' as const, 'activity' as const),
      namespace: id,
      id,
      runId: id,
      type: id,
    },
    { requiredKeys: ['kind', 'namespace'] },
  );
}

/** Values of the wrong type for a claim field (claims come from JSON in workflow history). */
const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  fc.constant(new Uint8Array([1, 2, 3])),
  fc.constant(Object.assign(Object.create(null) as object, { toString: 'x' })),
);

/** Field names a driver might read besides its own (other drivers' fields, prototype names). */
const FIELD_NAMES = [
  'key',
  'bucket',
  'table',
  'schema',
  'prefix',
  'keyPrefix',
  'root',
  'path',
  'file',
  'url',
  'hash_algorithm',
  'hash_value',
  'hashAlgorithm',
  'hashValue',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
];

/** What a hostile claim is built from; {@link buildHostileClaim} turns it into claim data. */
interface ClaimRecipe {
  /** Index into the base claims (valid claims, then `hooks.hostileClaims`). */
  base: number;
  key: { kind: 'keep' } | { kind: 'set'; value: string };
  hash:
    | { kind: 'keep' }
    | { kind: 'inside' }
    | { kind: 'sentinel' }
    | { kind: 'set'; algorithm?: unknown; value?: unknown; camel: boolean };
  fields: { name: string; value: unknown; remove: boolean }[];
  container:
    | 'plain'
    | 'null-prototype'
    | 'frozen'
    | 'class'
    | 'map'
    | 'array'
    | 'date'
    | 'null'
    | 'number'
    | 'string'
    | 'boolean'
    | 'undefined';
  batched: boolean;
}

/** Material the claim generators draw on, gathered after storing and planting. */
interface ClaimMaterial {
  keyField: string;
  bases: Record<string, string>[];
  validKeys: string[];
  plantedKeys: string[];
  insideHash: string;
  sentinelHash: string;
}

function keyArbitrary(m: ClaimMaterial): fc.Arbitrary<string> {
  const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
  const digest = fc.oneof(fc.constant(m.insideHash), fc.constant(m.sentinelHash), hex64);
  const known = fc.constantFrom(...m.validKeys, ...m.plantedKeys);
  const traversalPrefix = fc.constantFrom(
    '../',
    '..\\',
    '%2e%2e%2f',
    '%2E%2E%2F',
    '..%2f',
    '%2e%2e/',
    '..%5c',
    '/',
    '\\',
    '//',
    './',
    '....//',
    'C:\\',
    'file:///',
    '\\\\?\\',
  );
  const generators: fc.Arbitrary<string>[] = [
    // Traversal in front of a valid or planted key, or of a well-known target.
    fc
      .tuple(
        traversalPrefix,
        fc.integer({ min: 1, max: 12 }),
        fc.oneof(known, fc.constantFrom('etc/passwd', 'windows/win.ini')),
      )
      .map(([p, n, rest]) => p.repeat(n) + rest),
    // A hostile piece spliced into a valid or planted key.
    fc
      .tuple(
        known,
        fc.nat(),
        fc.constantFrom('/../', '/..', '..', '\u0000', '%00', '\\', '//', '/./', '%2F', '%2e%2e%2f', '~', ':', ' '),
      )
      .map(([k, at, piece]) => {
        const i = at % (k.length + 1);
        return k.slice(0, i) + piece + k.slice(i);
      }),
    // Absolute paths and URLs.
    known.chain((k) =>
      fc.constantFrom(
        `/${k}`,
        `\\${k}`,
        `C:\\${k}`,
        `//host/share/${k}`,
        `file:///${k}`,
        `s3://other/${k}`,
        '/etc/passwd',
      ),
    ),
    // Well-formed keys for targets and digests that were never stored (or the sentinel's).
    fc.tuple(fc.option(hostileTargetArbitrary(), { nil: undefined }), digest).map(([t, h]) => buildStorageKey(t, h)),
    // Case and segment damage.
    known.map((k) => k.toUpperCase()),
    fc.tuple(known, fc.nat(), fc.string({ unit: hostileUnit, maxLength: 12 })).map(([k, at, s]) => {
      const parts = k.split('/');
      parts[at % parts.length] = s;
      return parts.join('/');
    }),
    // Very long values, up to 100 KB.
    fc
      .tuple(
        known,
        repeatedTo(fc.constantFrom('a', '/', '../', '%2F', 'é', '\u0000', 'v0/'), 1000, MAX_HOSTILE_CLAIM_VALUE_LENGTH),
      )
      .map(([k, filler]) => k + filler),
    // Anything at all.
    fc.string({ unit: hostileUnit, maxLength: 80 }),
  ];
  return fc.oneof(...generators);
}

function hashArbitrary(m: ClaimMaterial): fc.Arbitrary<ClaimRecipe['hash']> {
  const value = fc.oneof(
    fc.constant(m.insideHash),
    fc.constant(m.sentinelHash),
    fc.constant(m.insideHash.toUpperCase()),
    fc.constant(m.insideHash.slice(1)),
    fc.constant(`${m.insideHash}0`),
    fc.constant(`${m.insideHash.slice(0, 63)}g`),
    fc.constant(`sha256:${m.insideHash}`),
    fc.constant(''),
    fc.string({ unit: hostileUnit, maxLength: 70 }),
    wrongType,
  );
  const algorithm = fc.oneof(
    fc.constantFrom(
      'sha256',
      'SHA256',
      'sha-256',
      'SHA-256',
      'md5',
      'sha1',
      'sha512',
      'crc32',
      '',
      ' sha256',
      'sha256\u0000',
    ),
    fc.string({ unit: hostileUnit, maxLength: 12 }),
    wrongType,
  );
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant({ kind: 'keep' as const }) },
    { weight: 2, arbitrary: fc.constant({ kind: 'inside' as const }) },
    { weight: 3, arbitrary: fc.constant({ kind: 'sentinel' as const }) },
    {
      weight: 3,
      arbitrary: fc.record(
        { kind: fc.constant('set' as const), algorithm, value, camel: fc.boolean() },
        { requiredKeys: ['kind', 'camel'] },
      ),
    },
  );
}

function recipeArbitrary(m: ClaimMaterial): fc.Arbitrary<ClaimRecipe> {
  const fieldValue = fc.oneof(
    { weight: 2, arbitrary: wrongType },
    { weight: 3, arbitrary: fc.string({ unit: hostileUnit, maxLength: 40 }) },
    { weight: 1, arbitrary: keyArbitrary(m) },
  );
  return fc.record({
    base: fc.nat({ max: m.bases.length - 1 }),
    key: fc.oneof(
      { weight: 1, arbitrary: fc.constant({ kind: 'keep' as const }) },
      { weight: 4, arbitrary: keyArbitrary(m).map((value) => ({ kind: 'set' as const, value })) },
    ),
    hash: hashArbitrary(m),
    fields: fc.array(
      fc.record({
        name: fc.oneof(fc.constantFrom(...FIELD_NAMES, ...Object.keys(m.bases[0] ?? {})), fc.string({ maxLength: 10 })),
        value: fieldValue,
        remove: fc.boolean(),
      }),
      { maxLength: 3 },
    ),
    container: fc.oneof(
      { weight: 12, arbitrary: fc.constant('plain' as const) },
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          'null-prototype' as const,
          'frozen' as const,
          'class' as const,
          'map' as const,
          'array' as const,
          'date' as const,
          'null' as const,
          'number' as const,
          'string' as const,
          'boolean' as const,
          'undefined' as const,
        ),
      },
    ),
    batched: fc.boolean(),
  });
}

/** A class instance carrying claim fields as own properties (not a plain object). */
class ClaimFields {}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Builds claim data from a recipe, and says whether the contract (DESIGN §3, §4.6) makes it
 * invalid whatever the backend holds: claim data that is not a map of strings, a missing key
 * field, or a missing, unknown or malformed hash.
 */
function buildHostileClaim(r: ClaimRecipe, m: ClaimMaterial): { claim: StorageDriverClaim; mustBeInvalid: boolean } {
  const fields = new Map<string, unknown>(Object.entries(m.bases[r.base] as Record<string, string>));
  if (r.key.kind === 'set') fields.set(m.keyField, r.key.value);
  const setHash = (algorithm: unknown, value: unknown, camel: boolean) => {
    for (const f of ['hash_algorithm', 'hash_value', 'hashAlgorithm', 'hashValue']) fields.delete(f);
    if (algorithm !== undefined) fields.set(camel ? 'hashAlgorithm' : 'hash_algorithm', algorithm);
    if (value !== undefined) fields.set(camel ? 'hashValue' : 'hash_value', value);
  };
  if (r.hash.kind === 'inside') setHash('sha256', m.insideHash, false);
  else if (r.hash.kind === 'sentinel') setHash('sha256', m.sentinelHash, false);
  else if (r.hash.kind === 'set') setHash(r.hash.algorithm, r.hash.value, r.hash.camel);
  for (const f of r.fields) {
    if (f.remove) fields.delete(f.name);
    else fields.set(f.name, f.value);
  }

  // Own enumerable properties, `__proto__` included (as JSON.parse creates them).
  const own = (target: object) => {
    for (const [k, v] of fields)
      Object.defineProperty(target, k, { value: v, enumerable: true, writable: true, configurable: true });
    return target;
  };
  let data: unknown;
  switch (r.container) {
    case 'plain':
      data = own({});
      break;
    case 'null-prototype':
      data = own(Object.create(null) as object);
      break;
    case 'frozen':
      data = Object.freeze(own({}));
      break;
    case 'class':
      data = own(new ClaimFields());
      break;
    case 'map':
      data = new Map(fields);
      break;
    case 'array':
      data = [...fields.values()];
      break;
    case 'date':
      data = new Date(0);
      break;
    case 'null':
      data = null;
      break;
    case 'number':
      data = 42;
      break;
    case 'string':
      data = JSON.stringify(Object.fromEntries(fields));
      break;
    case 'boolean':
      data = true;
      break;
    case 'undefined':
      data = undefined;
      break;
  }

  const isMap =
    r.container === 'plain' || r.container === 'null-prototype' || r.container === 'frozen' || r.container === 'class';
  const str = (name: string) => {
    const v = fields.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const allStrings = [...fields.values()].every((v) => typeof v === 'string');
  const pick = (a: string, b: string) => {
    const x = str(a);
    const y = str(b);
    return x !== undefined && y !== undefined && x !== y ? null : (x ?? y);
  };
  const algorithm = pick('hash_algorithm', 'hashAlgorithm');
  const value = pick('hash_value', 'hashValue');
  const hashValid = algorithm === 'sha256' && typeof value === 'string' && SHA256_HEX.test(value);
  const key = str(m.keyField);
  const mustBeInvalid = !isMap || !allStrings || !hashValid || key === undefined || key.length === 0;
  return { claim: new StorageDriverClaim(data as Record<string, string>), mustBeInvalid };
}

// ---------------------------------------------------------------------------------------------
// The group
// ---------------------------------------------------------------------------------------------

/** What {@link registerHostileInputTests} needs from the suite. */
export interface HostileInputContext<D extends StorageDriver> {
  /** Declares one test. */
  it: (name: string, fn: () => Promise<void>) => void;
  /** Declares a test as skipped, saying why. */
  skip: (name: string, why: string) => void;
  /** Creates a driver (destroyed after the test). */
  create: () => Promise<D>;
  /** The harness's capabilities, defaults applied. */
  caps: ConformanceCapabilities;
  /** The harness's backend hooks. */
  hooks: StorageDriverHarnessHooks<D>;
  /** Whether and how the property-based tests run; `undefined` for the defaults. */
  options: HostileInputOptions | undefined;
}

const CLAIM_CODES: ReadonlySet<string> = new Set([
  StorageDriverErrorCode.INVALID_CLAIM,
  StorageDriverErrorCode.NOT_FOUND,
  StorageDriverErrorCode.INTEGRITY,
]);

/** The error (or `undefined`) an operation rejects with, checking it is a coded error in `codes`. */
async function outcome<T>(
  operation: () => Promise<T>,
  codes: ReadonlySet<string>,
  what: string,
): Promise<{ ok: true; value: T } | { ok: false; code: string }> {
  try {
    return { ok: true, value: await operation() };
  } catch (e) {
    if (!isStorageDriverError(e)) {
      throw new assert.AssertionError({
        message: `${what}: threw a non-StorageDriverError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      });
    }
    assert.ok(
      codes.has(e.code),
      `${what}: unexpected ${e.code} (retryable ${e.retryable}): ${ellipsis(e.message, 300)}`,
    );
    return { ok: false, code: e.code };
  }
}

const bytesOf = (p: Payload) => Buffer.from(encodePayload(p)).toString('base64');

/** Registers the hostile-input tests (called inside the suite's describe block). */
export function registerHostileInputTests<D extends StorageDriver>(ctx: HostileInputContext<D>): void {
  const settings = resolveHostileInputSettings(ctx.options);
  const { caps, hooks } = ctx;
  const claimsTitle = 'hostile claims: a coded error or the stored payload, never a crash or a read outside the store';
  const targetsTitle = 'hostile target ids up to 10,000 characters: an exact round trip';
  const suffix = (runs: number) => ` (fast-check: ${runs} runs, seed ${settings.seed})`;
  if (!settings.enabled) {
    ctx.skip(claimsTitle, 'harness.hostileInput.enabled is false');
    ctx.skip(targetsTitle, 'harness.hostileInput.enabled is false');
    return;
  }

  if (caps.coreClaims) {
    ctx.it(claimsTitle + suffix(settings.numRuns), async () => {
      const d = await ctx.create();
      const inside = [makePayload('inside the store'), makePayload('inside, scoped')];
      const [plain] = await d.store({}, [inside[0] as Payload]);
      const [scoped] = await d.store(
        { target: { kind: 'workflow', namespace: 'hostile', id: 'wf', runId: 'run', type: 'T' } },
        [inside[1] as Payload],
      );
      assert.ok(plain && scoped);
      const sentinel = makePayload('SENTINEL planted outside the store');
      const sentinelBytes = encodePayload(sentinel);
      const plantedKeys = (await hooks.plantOutside?.(d, sentinelBytes)) ?? [];
      const foreign = hooks.hostileClaims?.(plain) ?? [];
      const keyField = caps.claimKeyField;
      const material: ClaimMaterial = {
        keyField,
        bases: [plain, scoped, ...foreign].map((c) => ({ ...c.claimData })),
        validKeys: [plain, scoped].map((c) => c.claimData[keyField] as string),
        plantedKeys,
        insideHash: plain.claimData['hash_value'] ?? (plain.claimData['hashValue'] as string),
        sentinelHash: sha256Hex(sentinelBytes),
      };
      const insideBytes = new Set(inside.map(bytesOf));
      const sentinelB64 = bytesOf(sentinel);
      const property = fc.asyncProperty(recipeArbitrary(material), async (recipe) => {
        const { claim, mustBeInvalid } = buildHostileClaim(recipe, material);
        const batch = recipe.batched ? [plain, claim] : [claim];
        const codes = mustBeInvalid ? new Set<string>([StorageDriverErrorCode.INVALID_CLAIM]) : CLAIM_CODES;
        const result = await outcome(() => d.retrieve({}, batch), codes, mustBeInvalid ? 'invalid claim' : 'claim');
        if (!result.ok) return;
        assert.ok(!mustBeInvalid, 'a claim the contract makes invalid was accepted');
        assert.ok(Array.isArray(result.value) && result.value.length === batch.length, 'one payload per claim');
        for (const p of result.value) {
          const b = bytesOf(p);
          assert.notEqual(b, sentinelB64, 'read the sentinel planted outside the store');
          assert.ok(insideBytes.has(b), 'resolved to a payload that was never stored');
        }
      });
      await withoutUnhandledRejections(() => checkProperty(claimsTitle, property, settings));
    });
  } else ctx.skip(claimsTitle, 'capabilities.coreClaims is false');

  const targetRuns = Math.max(1, Math.ceil(settings.numRuns / 4));
  ctx.it(targetsTitle + suffix(targetRuns), async () => {
    const d = await ctx.create();
    let run = 0;
    const property = fc.asyncProperty(hostileTargetArbitrary(), async (target) => {
      const payload = makePayload(`hostile target #${run++}`, { id: target.id ?? '' });
      const stored = await outcome(() => d.store({ target }, [payload]), new Set(), 'store');
      assert.ok(stored.ok);
      const claims = stored.value;
      assert.ok(Array.isArray(claims) && claims.length === 1, 'one claim per payload');
      const data = (claims[0] as StorageDriverClaim).claimData;
      for (const [k, v] of Object.entries(data)) assert.equal(typeof v, 'string', `claimData.${k} must be a string`);
      if (caps.maxClaimKeyBytes !== undefined) {
        const key = data[caps.claimKeyField] ?? '';
        const bytes = Buffer.byteLength(key, 'utf8');
        assert.ok(
          bytes <= caps.maxClaimKeyBytes,
          `claim key is ${bytes} bytes, over maxClaimKeyBytes ${caps.maxClaimKeyBytes}`,
        );
      }
      // Claims travel through workflow history as JSON.
      const fromHistory = new StorageDriverClaim(JSON.parse(JSON.stringify(data)));
      const back = await outcome(() => d.retrieve({}, [fromHistory]), new Set(), 'retrieve');
      assert.ok(back.ok && back.value.length === 1, 'one payload per claim');
      assertPayloadEqual(back.value[0] as Payload, payload, 'round trip');
    });
    await withoutUnhandledRejections(() => checkProperty(targetsTitle, property, { ...settings, numRuns: targetRuns }));
  });
}
