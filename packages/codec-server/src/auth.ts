/**
 * Built-in authentication and authorization for the codec server: static bearer tokens and
 * JWTs (verified with `jose`) whose permissions are read as the Temporal server reads them (see
 * `permissions.ts`). {@link createBearerAuthorizer} returns an ordinary
 * {@link CodecServerAuthorize} hook, for {@link createCodecServerHandler} or `x-storage serve`.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { configError } from './errors';
import type {
  CodecServerAuthGrant,
  CodecServerAuthorize,
  CodecServerAuthRejection,
  CodecServerRequestInfo,
  CodecServerRoute,
} from './handler';
import {
  type CodecServerAccess,
  compilePermissionsRegex,
  DEFAULT_PERMISSIONS_CLAIM,
  type TemporalClaims,
  temporalAllows,
  temporalClaimsFromPermissions,
} from './permissions';

type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' }});
type JWTVerifyGetKey = Parameters<Jose['jwtVerify']>[1];
type JWTVerifyOptions = NonNullable<Parameters<Jose['jwtVerify']>[2]>;
type JWTPayload = Awaited<ReturnType<Jose['jwtVerify']>>['payload'];

/** What each route needs: `/decode` and `/download` read, `/encode` writes. */
export const ROUTE_ACCESS: Readonly<Record<CodecServerRoute, CodecServerAccess>> = Object.freeze({
  decode: 'read',
  download: 'read',
  encode: 'write',
});

/** A static bearer token and what it may do. */
export interface StaticBearerToken {
  /** Names the token in audit lines and messages (never the secret). */
  name: string;
  /** The secret, sent as `Authorization: Bearer <token>`. At least 16 characters. */
  token: string;
  /** Namespaces it may use: exact names (case-sensitive, as Temporal compares them), or `'*'` for every namespace. */
  namespaces: readonly string[];
  /** Routes it may use. Default: `['decode', 'download']` (read only). */
  routes?: readonly CodecServerRoute[];
}

/** Remote key set settings of {@link JwtAuthOptions.jwksUrl}. */
export interface JwksOptions {
  /** How long fetched keys are used before they are fetched again, in ms. Default: 600,000 (10 minutes). */
  cacheMaxAgeMs?: number;
  /**
   * After a fetch, how long a token with an unknown `kid` waits before it may trigger another
   * fetch (key rotation), in ms. Default: 30,000.
   */
  cooldownMs?: number;
  /** Timeout of one fetch, in ms. Default: 5,000. */
  timeoutMs?: number;
}

/** JWT verification, and how permissions are read from the token. */
export interface JwtAuthOptions {
  /**
   * The issuer's JSON Web Key Set (`https://…/.well-known/jwks.json`; `http:` only on a loopback
   * host). Keys are cached and fetched again when a token names an unknown `kid` (rotation). One
   * of `jwksUrl` and `key`.
   */
  jwksUrl?: string;
  /**
   * The verification key itself (the contents, not a path): a PEM public key (`BEGIN PUBLIC
   * KEY`), a PEM certificate (`BEGIN CERTIFICATE`), a JWK or a JWK Set as JSON. One of `jwksUrl`
   * and `key`.
   */
  key?: string;
  /** Accepted `alg` values (`none` is never accepted). Default: `['RS256', 'ES256']`, those of Temporal's default key provider. */
  algorithms?: readonly string[];
  /** Required `iss` (one of). Default: not checked. */
  issuer?: string | readonly string[];
  /** Required `aud` (one of). Default: not checked. */
  audience?: string | readonly string[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. Default: `0`. */
  clockToleranceSeconds?: number;
  /** Name of the claim holding `<namespace>:<role>` entries. Default: `permissions`. */
  permissionsClaim?: string;
  /**
   * Temporal's `permissionsRegex`: a regular expression with named groups `namespace` and
   * `role` (Go `(?P<…>)` or JavaScript `(?<…>)` syntax) for entries of another shape. Default:
   * split at the first `:`.
   */
  permissionsRegex?: string;
  /** Remote key set settings (with `jwksUrl`). */
  jwks?: JwksOptions;
}

/** Options of {@link createBearerAuthorizer}: static tokens, JWTs, or both. */
export interface BearerAuthOptions {
  /** Static bearer tokens. */
  tokens?: readonly StaticBearerToken[];
  /** JWT verification. */
  jwt?: JwtAuthOptions;
}

const ROUTES: ReadonlySet<string> = new Set(['encode', 'decode', 'download']);
/** Minimum length of a static token. */
export const MIN_STATIC_TOKEN_LENGTH = 16;

let josePromise: Promise<Jose> | undefined;

/**
 * Loads `jose` (ESM only): `require()` where Node runs ES modules that way (≥ 20.19, 22.12), a
 * dynamic `import()` on older Node 20.
 */
function loadJose(): Promise<Jose> {
  josePromise ??= (async () => {
    try {
      return require('jose') as Jose;
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ERR_REQUIRE_ESM') throw error;
      return await import('jose');
    }
  })();
  return josePromise;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function reject(status: 401 | 403, message: string): CodecServerAuthRejection {
  return { status, message };
}

/** The token of `Authorization: Bearer <token>`, split as the Temporal server splits it (at the first space, scheme case-insensitive). */
function bearerToken(authorization: string | undefined): string | CodecServerAuthRejection {
  if (authorization === undefined) return reject(401, 'missing bearer token');
  const space = authorization.indexOf(' ');
  if (space === -1) return reject(401, 'unexpected authorization format (use "Bearer <token>")');
  if (authorization.slice(0, space).toLowerCase() !== 'bearer') {
    return reject(401, 'unexpected authorization scheme (use "Bearer <token>")');
  }
  return authorization.slice(space + 1);
}

interface TokenEntry {
  name: string;
  digest: Buffer;
  namespaces: ReadonlySet<string> | '*';
  routes: ReadonlySet<string>;
}

function checkTokens(tokens: readonly StaticBearerToken[]): TokenEntry[] {
  if (!Array.isArray(tokens)) throw configError('tokens must be an array');
  const names = new Set<string>();
  const digests = new Set<string>();
  return tokens.map((t, i) => {
    const where = `tokens[${i}]`;
    if (typeof t?.name !== 'string' || t.name === '') throw configError(`${where}.name must be a non-empty string`);
    if (names.has(t.name)) throw configError(`${where}.name: two tokens are named ${JSON.stringify(t.name)}`);
    names.add(t.name);
    if (typeof t.token !== 'string' || t.token.length < MIN_STATIC_TOKEN_LENGTH) {
      throw configError(`${where} (${t.name}): the token must be at least ${MIN_STATIC_TOKEN_LENGTH} characters`);
    }
    if (/\s/.test(t.token)) throw configError(`${where} (${t.name}): the token must not contain white space`);
    const digest = sha256(t.token);
    if (digests.has(digest.toString('hex'))) throw configError(`${where} (${t.name}): the same token is listed twice`);
    digests.add(digest.toString('hex'));
    if (
      !Array.isArray(t.namespaces) ||
      t.namespaces.length === 0 ||
      !t.namespaces.every((n: unknown) => typeof n === 'string')
    ) {
      throw configError(`${where}.namespaces must list namespaces, or "*" for all`);
    }
    const routes = t.routes ?? ['decode', 'download'];
    if (!Array.isArray(routes) || routes.length === 0 || !routes.every((r) => ROUTES.has(r))) {
      throw configError(`${where}.routes must list routes among "encode", "decode", "download"`);
    }
    return {
      name: t.name,
      digest,
      namespaces: t.namespaces.includes('*') ? '*' : new Set(t.namespaces),
      routes: new Set(routes),
    };
  });
}

/**
 * The entry whose token equals `token`. Every entry is compared, each with
 * `crypto.timingSafeEqual` on SHA-256 digests (equal lengths whatever the input), so the time
 * taken says nothing about how much of a token matched, nor which one.
 */
function findToken(entries: readonly TokenEntry[], token: string): TokenEntry | undefined {
  const digest = sha256(token);
  let found: TokenEntry | undefined;
  for (const entry of entries) {
    const equal = timingSafeEqual(entry.digest, digest);
    found = equal && found === undefined ? entry : found;
  }
  return found;
}

function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** A verified JWT: its subject and Temporal roles. */
interface JwtIdentity {
  subject: string;
  claims: TemporalClaims;
}

/** jose error codes that mean "this token is not valid" (401); any other failure is the server's (500). */
const TOKEN_ERRORS = new Set([
  'ERR_JWT_EXPIRED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_INVALID',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

async function jwtVerifier(options: JwtAuthOptions): Promise<(token: string) => Promise<JwtIdentity>> {
  if (typeof options !== 'object' || options === null) throw configError('jwt must be an object');
  const algorithms = [...(options.algorithms ?? ['RS256', 'ES256'])];
  if (algorithms.length === 0 || !algorithms.every((a) => typeof a === 'string' && a !== '')) {
    throw configError('jwt.algorithms must list algorithms such as "RS256", "ES256"');
  }
  if (algorithms.some((a) => a.toLowerCase() === 'none')) throw configError('jwt.algorithms: "none" is never accepted');
  if ((options.jwksUrl === undefined) === (options.key === undefined)) {
    throw configError('jwt needs exactly one of jwksUrl and key');
  }
  const tolerance = options.clockToleranceSeconds ?? 0;
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
    throw configError('jwt.clockToleranceSeconds must be a non-negative number');
  }
  const claimName = options.permissionsClaim ?? DEFAULT_PERMISSIONS_CLAIM;
  if (typeof claimName !== 'string' || claimName === '') throw configError('jwt.permissionsClaim must be a claim name');
  let regex: RegExp | undefined;
  if (options.permissionsRegex !== undefined) {
    try {
      regex = compilePermissionsRegex(options.permissionsRegex);
    } catch (error) {
      throw configError(`jwt.permissionsRegex: ${(error as Error).message}`);
    }
  }
  for (const [field, value] of [
    ['issuer', options.issuer],
    ['audience', options.audience],
  ] as const) {
    const list = typeof value === 'string' ? [value] : value;
    if (list !== undefined && (!Array.isArray(list) || !list.every((v) => typeof v === 'string' && v !== ''))) {
      throw configError(`jwt.${field} must be a string or a list of strings`);
    }
  }

  const jose = await loadJose();
  let key: JWTVerifyGetKey;
  if (options.jwksUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(options.jwksUrl);
    } catch {
      throw configError(`jwt.jwksUrl is not a URL: ${JSON.stringify(options.jwksUrl)}`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHostname(url.hostname))) {
      throw configError('jwt.jwksUrl must be an https: URL (http: only on a loopback host)');
    }
    const jwks = options.jwks ?? {};
    for (const [field, value] of Object.entries(jwks)) {
      if (!['cacheMaxAgeMs', 'cooldownMs', 'timeoutMs'].includes(field))
        throw configError(`jwt.jwks.${field}: unknown`);
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw configError(`jwt.jwks.${field} must be a non-negative number of milliseconds`);
      }
    }
    key = jose.createRemoteJWKSet(url, {
      cacheMaxAge: jwks.cacheMaxAgeMs ?? 600_000,
      cooldownDuration: jwks.cooldownMs ?? 30_000,
      timeoutDuration: jwks.timeoutMs ?? 5_000,
    });
  } else {
    key = await localKey(jose, String(options.key), algorithms);
  }
  const verifyOptions: JWTVerifyOptions = { algorithms, clockTolerance: tolerance };
  if (options.issuer !== undefined) verifyOptions.issuer = options.issuer as string | string[];
  if (options.audience !== undefined) verifyOptions.audience = options.audience as string | string[];

  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, key, verifyOptions));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && TOKEN_ERRORS.has(code)) throw new InvalidToken(tokenErrorMessage(error));
      throw error;
    }
    // The server's jwt library also refuses tokens issued in the future.
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + tolerance) {
      throw new InvalidToken('the token is issued in the future ("iat")');
    }
    // As the server's claim mapper: a token without a string "sub" is refused.
    if (typeof payload.sub !== 'string') throw new InvalidToken('the token has no "sub" claim');
    return { subject: payload.sub, claims: temporalClaimsFromPermissions(payload[claimName], regex) };
  };
}

class InvalidToken extends Error {}

function tokenErrorMessage(error: unknown): string {
  const e = error as { code?: string; claim?: string; message?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'the token has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `the token's "${e.claim}" claim is not accepted`;
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return "the token's algorithm is not accepted";
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return "no key matches the token's key id";
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return "the token's signature is invalid";
    default:
      return 'the token is malformed';
  }
}

/** A verification key given as text (PEM public key or certificate, JWK, JWK Set). */
async function localKey(jose: Jose, text: string, algorithms: string[]): Promise<JWTVerifyGetKey> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: { keys?: unknown };
    try {
      json = JSON.parse(trimmed);
    } catch {
      throw configError('jwt.key: not valid JSON (expected a JWK or a JWK Set)');
    }
    if (Array.isArray(json.keys)) {
      try {
        return jose.createLocalJWKSet(json as Parameters<Jose['createLocalJWKSet']>[0]);
      } catch (error) {
        throw configError(`jwt.key: not a valid JWK Set: ${(error as Error).message}`);
      }
    }
  }
  // One key: import it once per accepted algorithm it fits.
  const keys = new Map<string, Awaited<ReturnType<Jose['importSPKI']>> | Uint8Array>();
  for (const alg of algorithms) {
    try {
      if (trimmed.startsWith('{')) keys.set(alg, await jose.importJWK(JSON.parse(trimmed), alg));
      else if (trimmed.includes('-----BEGIN CERTIFICATE-----')) keys.set(alg, await jose.importX509(trimmed, alg));
      else if (trimmed.includes('-----BEGIN PUBLIC KEY-----')) keys.set(alg, await jose.importSPKI(trimmed, alg));
      else throw configError('jwt.key: expected a PEM public key or certificate, a JWK or a JWK Set');
    } catch (error) {
      if ((error as { code?: unknown }).code === 'E_CONFIG') throw error;
      // This key does not fit this algorithm: skip it.
    }
  }
  if (keys.size === 0) throw configError(`jwt.key: the key fits none of the algorithms ${algorithms.join(', ')}`);
  return async (header) => {
    const found = keys.get(header.alg ?? '');
    if (found === undefined) {
      throw Object.assign(new Error('algorithm not accepted'), { code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
    }
    return found;
  };
}

/**
 * Creates an auth hook that accepts `Authorization: Bearer <token>` with a static token or a
 * JWT (or either, when both are configured: static tokens are tried first).
 *
 * - Static token: the request's namespace must be one of the token's `namespaces` and its route
 *   one of its `routes`; the principal (audit) is `token:<name>`.
 * - JWT: signature (`algorithms`, key from `jwksUrl` or `key`), `exp` / `nbf` / `iat` (with
 *   `clockToleranceSeconds`), `issuer` and `audience` when set, and a string `sub` are required;
 *   permissions are read from `permissionsClaim` as the Temporal server reads them, and the route
 *   needs {@link ROUTE_ACCESS} in the request's namespace (`X-Namespace`). The principal is `sub`.
 * - A missing, malformed or invalid credential is 401 (with `WWW-Authenticate: Bearer`); a valid
 *   one without permission for the namespace and route is 403. A request to a path that is not
 *   a route is allowed once authenticated (the handler answers 404).
 * - A JWKS that cannot be fetched makes the hook throw (the handler answers 500 and reports the
 *   cause to `onError`); nothing is allowed without a verified key.
 *
 * Loads `jose` and the key (`key`) before resolving; a remote key set is fetched on first use.
 *
 * @throws StorageDriverError `E_CONFIG` for invalid options: neither tokens nor jwt, a token
 *   shorter than 16 characters or listed twice, unknown routes, both or neither of `jwksUrl` and
 *   `key`, a non-https JWKS URL off loopback, `none` among the algorithms, a key that fits none of
 *   them, a `permissionsRegex` without `namespace` and `role` groups.
 */
export async function createBearerAuthorizer(options: BearerAuthOptions): Promise<CodecServerAuthorize> {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (options.tokens === undefined && options.jwt === undefined) throw configError('configure tokens, jwt, or both');
  const tokens = options.tokens === undefined ? [] : checkTokens(options.tokens);
  const verify = options.jwt === undefined ? undefined : await jwtVerifier(options.jwt);

  return async (info: CodecServerRequestInfo): Promise<CodecServerAuthGrant | CodecServerAuthRejection> => {
    const token = bearerToken(info.authorization);
    if (typeof token !== 'string') return token;
    const route = info.route;
    const entry = tokens.length > 0 ? findToken(tokens, token) : undefined;
    if (entry !== undefined) {
      const principal = `token:${entry.name}`;
      if (route === undefined) return { allow: true, principal };
      if (!entry.routes.has(route)) return reject(403, `token ${JSON.stringify(entry.name)} may not use /${route}`);
      if (entry.namespaces !== '*' && !entry.namespaces.has(info.namespace)) {
        return reject(
          403,
          `token ${JSON.stringify(entry.name)} may not use namespace ${JSON.stringify(info.namespace)}`,
        );
      }
      return { allow: true, principal };
    }
    if (verify === undefined) return reject(401, 'invalid bearer token');
    let identity: JwtIdentity;
    try {
      identity = await verify(token);
    } catch (error) {
      if (error instanceof InvalidToken) return reject(401, `invalid bearer token: ${error.message}`);
      throw error;
    }
    if (route === undefined) return { allow: true, principal: identity.subject };
    const access = ROUTE_ACCESS[route];
    if (!temporalAllows(identity.claims, info.namespace, access)) {
      return reject(403, `no ${access} permission for namespace ${JSON.stringify(info.namespace)}`);
    }
    return { allow: true, principal: identity.subject };
  };
}
