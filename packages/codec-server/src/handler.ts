/**
 * The HTTP request handler: a plain `(req, res) => void` for `node:http`, mountable in express
 * (`app.use('/codec', handler)`) and fastify (see the README).
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CodecNamespaceConfig, NamespaceCodec, type StorageObjectEvent } from './codec';
import { badRequest, CodecServerError, CodecServerErrorCode, configError } from './errors';
import { payloadsFromJson, payloadsToJson } from './proto-json';

/** Default {@link CodecServerOptions.maxBodyBytes}: 16 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Default {@link CodecServerOptions.maxPayloads}: 10,000 payloads per request. */
export const DEFAULT_MAX_PAYLOADS = 10_000;
/** Default {@link CodecServerOptions.maxMetadataEntries}: 100,000 metadata entries per request. */
export const DEFAULT_MAX_METADATA_ENTRIES = 100_000;
/** Default {@link CodecServerOptions.defaultNamespace}. */
export const DEFAULT_NAMESPACE = 'default';
/** Request headers the CORS preflight allows (`Authorization-Extras` is sent by the Web UI with "pass access token"). */
export const CORS_ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization, Authorization-Extras';
/** The three routes. */
export type CodecServerRoute = 'encode' | 'decode' | 'download';

const ROUTES: ReadonlySet<string> = new Set(['encode', 'decode', 'download']);

/** What the auth hook sees about a request (before its body is read). */
export interface CodecServerRequestInfo {
  /** The raw request (headers, socket, TLS peer certificate, ...). Do not read its body. */
  readonly request: IncomingMessage;
  /** HTTP method, upper case. */
  readonly method: string;
  /** Path relative to `basePath`, e.g. `/decode`; possibly not a valid route. */
  readonly path: string;
  /** The route, or `undefined` when the path is not one. */
  readonly route: CodecServerRoute | undefined;
  /** The namespace from `X-Namespace`, or `defaultNamespace` when the header is absent or empty. */
  readonly namespace: string;
  /** The `Origin` header, when sent (browsers send it; the `temporal` CLI does not). */
  readonly origin: string | undefined;
  /** The `Authorization` header, when sent. */
  readonly authorization: string | undefined;
}

/** An allowing decision of the auth hook that names who sent the request (for {@link CodecServerAuditEvent.principal}). */
export interface CodecServerAuthGrant {
  /** Allows the request. */
  allow: true;
  /** Who sent the request: a JWT's `sub`, `token:<name>` for a static token, a user name. */
  principal?: string;
}

/** A rejection returned by the auth hook. */
export interface CodecServerAuthRejection {
  /** `401` (missing / invalid credentials) or `403` (not allowed). */
  status: 401 | 403;
  /** Short reason sent to the client. Default: `unauthorized` / `forbidden`. */
  message?: string;
}

/**
 * The auth hook: `true` or a {@link CodecServerAuthGrant} allows the request; `false` rejects it
 * with 403; a {@link CodecServerAuthRejection} rejects it with its status. Anything else, or a
 * thrown error, rejects it (fail closed: 403, or 500 when it throws).
 */
export type CodecServerAuthorize = (
  info: CodecServerRequestInfo,
) =>
  | boolean
  | CodecServerAuthGrant
  | CodecServerAuthRejection
  | Promise<boolean | CodecServerAuthGrant | CodecServerAuthRejection>;

/** An object a request stored or retrieved, in a {@link CodecServerAuditEvent}. */
export interface CodecServerAuditObject {
  /** Name of the driver. */
  driver: string;
  /** The claim's `key`, when it has one (every bundled driver's claims do). */
  key?: string;
  /** The claim's `bucket`, when it has one (S3). */
  bucket?: string;
  /** Serialized size of the payload in bytes. */
  bytes: number;
}

/**
 * One audited request (see {@link CodecServerOptions.onAudit}): every `/encode` and `/download`
 * request, and every `/decode` request that retrieved a payload or was refused by the auth hook.
 */
export interface CodecServerAuditEvent {
  /** When the response was sent (ISO 8601). */
  time: string;
  /** The route. */
  route: CodecServerRoute;
  /** HTTP status of the response. */
  status: number;
  /** Error code of a failed request. */
  code?: string;
  /** The request's namespace. */
  namespace: string;
  /** Who sent it: the auth hook's {@link CodecServerAuthGrant.principal}; absent when unknown (refused, or a hook that returns `true`). */
  principal?: string;
  /** The client's address. */
  remoteAddress?: string;
  /** What was stored (`/encode`) or retrieved, in request order. */
  objects: CodecServerAuditObject[];
  /** Sum of the objects' bytes. */
  bytes: number;
}

/** CORS settings. */
export interface CodecServerCorsOptions {
  /**
   * Allowed origins, exact matches such as `http://localhost:8233` (the Web UI's origin), or
   * `'*'` for any origin (not recommended with credentials).
   */
  origins: readonly string[] | '*';
  /**
   * Answer `Access-Control-Allow-Credentials: true`, needed when the Web UI's
   * "include cross-origin credentials" setting is on. Default: `false`.
   */
  allowCredentials?: boolean;
  /** `Access-Control-Max-Age` of preflight responses, in seconds. Default: `600`. */
  maxAgeSeconds?: number;
}

/** Options of {@link createCodecServerHandler}. */
export interface CodecServerOptions {
  /** Configuration per namespace, selected by the `X-Namespace` header. */
  namespaces?: Record<string, CodecNamespaceConfig>;
  /** Configuration for any namespace not in `namespaces`. Default: none (such namespaces get 404). */
  otherNamespaces?: CodecNamespaceConfig;
  /** Namespace used when `X-Namespace` is absent or empty. Default: `default`. */
  defaultNamespace?: string;
  /**
   * CORS. Default: none — no CORS headers, and browser requests carrying an `Origin` are
   * rejected with 403 (the `temporal` CLI sends no `Origin` and is unaffected).
   */
  cors?: CodecServerCorsOptions;
  /**
   * Auth hook, called for every request except CORS preflights (browsers send those without
   * credentials), before routing and before the body is read. Default: allow everything.
   */
  authorize?: CodecServerAuthorize;
  /** Largest accepted request body in bytes; larger bodies get 413. Default: 16 MiB. */
  maxBodyBytes?: number;
  /**
   * Most payloads accepted in one request; more get 413 `E_TOO_MANY_PAYLOADS` before any is
   * decoded. Bounds the work one request can cause (a 16 MiB body of `{}` is 5 million payloads).
   * The Web UI and the `temporal` CLI send one `Payloads` message per request. Default: 10,000.
   */
  maxPayloads?: number;
  /**
   * Most metadata entries accepted in one request, over all its payloads; more get 413
   * `E_TOO_MANY_PAYLOADS` before any payload is decoded. Default: 100,000.
   */
  maxMetadataEntries?: number;
  /** Path prefix to strip (e.g. `/codec` when mounted there without a router). Default: none. */
  basePath?: string;
  /**
   * Refuse `/encode` with 403 `E_READ_ONLY` (after the auth hook, before reading the body), for
   * deployments that only show payloads (the Web UI and the `temporal` CLI never call it).
   * Default: `false`.
   */
  readOnly?: boolean;
  /**
   * Most requests handled at once; more are answered 503 `E_BUSY` (with `Retry-After`) at once,
   * before the auth hook. Default: no limit.
   */
  maxConcurrentRequests?: number;
  /**
   * Most bytes of payloads being retrieved at once, over all requests (`/download`, and `/decode`
   * when it retrieves): a request whose references' recorded sizes would take the total above it
   * is answered 503 `E_BUSY` (with `Retry-After`) before anything is read from storage, unless
   * nothing else is being retrieved (so that one large payload can still be downloaded). Once
   * retrieved, payloads count with their real size until the response is sent. Default: no limit.
   */
  maxConcurrentDownloadBytes?: number;
  /**
   * Called once per audited request (see {@link CodecServerAuditEvent}), after its response; an
   * error it throws goes to `onError`. Default: none.
   */
  onAudit?: (event: CodecServerAuditEvent) => void;
  /**
   * Called with every 5xx error (and its `cause`) for logging. Responses never carry stack
   * traces or the messages of non-storage errors. Default: none.
   */
  onError?: (error: CodecServerError, info: CodecServerRequestInfo | undefined) => void;
  /**
   * Instrumentation of every request but `/healthz`: see {@link CodecServerInstrumentation}
   * (`codecServerInstrumentation()` of `@x/storage-driver-otel` for OpenTelemetry spans and
   * metrics). Default: none.
   */
  instrumentation?: CodecServerInstrumentation;
}

/** A `node:http` request listener. */
export type CodecServerHandler = (request: IncomingMessage, response: ServerResponse) => void;

/** The liveness route (relative to `basePath`): `GET` or `HEAD` answers 200 `{"status":"ok"}`. */
export const HEALTH_PATH = '/healthz';

/** What {@link CodecServerInstrumentation} learns about a request before it is handled. */
export interface CodecServerRequestStart {
  /** The raw request (headers, e.g. a `traceparent`). Do not read its body. */
  readonly request: IncomingMessage;
  /** HTTP method, upper case. */
  readonly method: string;
  /** The route, or `undefined` when the path is not one (or the request target is malformed). */
  readonly route: CodecServerRoute | undefined;
}

/** How a request ended, as {@link CodecServerInstrumentation} sees it. */
export interface CodecServerRequestOutcome {
  /** HTTP status of the response. */
  readonly status: number;
  /** Error code of a failed request (`E_UNKNOWN_NAMESPACE`, `E_BUSY`, a storage error code…). */
  readonly code: string | undefined;
  /** The route, or `undefined` when the path is not one. */
  readonly route: CodecServerRoute | undefined;
  /** The request's namespace, once known (not for a CORS preflight or a request refused before it was read). */
  readonly namespace: string | undefined;
  /**
   * Whether `namespace` is one of the `namespaces` option's (a bounded set, fit for a metric
   * attribute), rather than any value a client sent in `X-Namespace`.
   */
  readonly namespaceConfigured: boolean;
  /** Payloads in the request body (0 when it was not read). */
  readonly payloads: number;
  /** Bytes of the payloads stored (`/encode`) or retrieved (`/download`, `/decode`). */
  readonly bytes: number;
}

/**
 * Instrumentation of every request but `/healthz` (e.g. `codecServerInstrumentation()` of
 * `@x/storage-driver-otel`, which starts an OpenTelemetry span and records metrics): called when a
 * request arrives, it must call `handle` once and may await it; `handle` resolves to how the
 * request ended and never rejects. Whatever `handle` does (auth, decoding, the drivers' storage
 * calls) runs inside the hook's call, so an OpenTelemetry context it makes active there is the
 * parent of the drivers' spans. If the hook throws or never calls `handle`, the request is
 * handled anyway and the error goes to `onError`.
 */
export type CodecServerInstrumentation = (
  request: CodecServerRequestStart,
  handle: () => Promise<CodecServerRequestOutcome>,
) => unknown;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

/**
 * Creates the codec-server request handler: `POST /encode`, `POST /decode`
 * (`?preserveStorageRefs=true` returns references as they are) and `POST /download`, bodies
 * `{"payloads":[...]}` in proto3 JSON; and `GET /healthz` (liveness: 200 `{"status":"ok"}`, without
 * auth, CORS or the concurrency limit, never instrumented).
 *
 * @throws StorageDriverError `E_CONFIG` for an invalid option (bad namespace config, an empty
 *   `defaultNamespace`, a `maxBodyBytes` / `maxPayloads` that is not a positive integer, a
 *   `maxMetadataEntries` that is not a non-negative integer, a `maxConcurrentRequests` /
 *   `maxConcurrentDownloadBytes` that is not a positive integer, CORS origins that are not a list of
 *   strings or `'*'`, `cors.allowCredentials` together with origins `'*'`).
 * @throws TypeError if `options` is not an object, or drivers or codecs do not have the expected
 *   methods.
 */
export function createCodecServerHandler(options: CodecServerOptions): CodecServerHandler {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const instrumentation = options.instrumentation;
  if (instrumentation !== undefined && typeof instrumentation !== 'function') {
    throw new TypeError('instrumentation must be a function');
  }
  const codecs = new Map<string, NamespaceCodec>();
  for (const [name, config] of Object.entries(options.namespaces ?? {}))
    codecs.set(name, new NamespaceCodec(name, config));
  const other = options.otherNamespaces;
  const defaultNamespace = options.defaultNamespace ?? DEFAULT_NAMESPACE;
  if (typeof defaultNamespace !== 'string' || defaultNamespace === '')
    throw configError('defaultNamespace must be a non-empty string');
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw configError(`maxBodyBytes must be a positive integer, got ${String(maxBodyBytes)}`);
  }
  const maxPayloads = options.maxPayloads ?? DEFAULT_MAX_PAYLOADS;
  if (!Number.isSafeInteger(maxPayloads) || maxPayloads < 1) {
    throw configError(`maxPayloads must be a positive integer, got ${String(maxPayloads)}`);
  }
  const maxMetadataEntries = options.maxMetadataEntries ?? DEFAULT_MAX_METADATA_ENTRIES;
  if (!Number.isSafeInteger(maxMetadataEntries) || maxMetadataEntries < 0) {
    throw configError(`maxMetadataEntries must be a non-negative integer, got ${String(maxMetadataEntries)}`);
  }
  const cors = options.cors;
  if (cors !== undefined) {
    const ok =
      cors.origins === '*' || (Array.isArray(cors.origins) && cors.origins.every((o) => typeof o === 'string'));
    if (!ok) throw configError("cors.origins must be a list of origins or '*'");
    if (cors.origins === '*' && cors.allowCredentials === true) {
      throw configError(
        "cors.allowCredentials cannot be combined with origins '*' (any site could read decoded payloads with the user's credentials); list the origins",
      );
    }
  }
  const allowedOrigins = cors === undefined || cors.origins === '*' ? undefined : new Set(cors.origins);
  const maxConcurrent = optionalLimit(options.maxConcurrentRequests, 'maxConcurrentRequests');
  const maxDownloadBytes = optionalLimit(options.maxConcurrentDownloadBytes, 'maxConcurrentDownloadBytes');
  let active = 0;
  let downloadBytes = 0;
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const otherCodecs = new Map<string, NamespaceCodec>();
  const codecFor = (namespace: string): NamespaceCodec | undefined => {
    const known = codecs.get(namespace);
    if (known !== undefined || other === undefined) return known;
    let codec = otherCodecs.get(namespace);
    if (codec === undefined) {
      codec = new NamespaceCodec(namespace, other);
      if (otherCodecs.size < 1000) otherCodecs.set(namespace, codec);
    }
    return codec;
  };
  // Validate `otherNamespaces` up front.
  if (other !== undefined) new NamespaceCodec('*', other);

  const originAllowed = (origin: string): boolean =>
    cors !== undefined && (allowedOrigins === undefined || allowedOrigins.has(origin));

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    target: RequestTarget,
  ): Promise<CodecServerRequestOutcome> {
    let info: CodecServerRequestInfo | undefined;
    let principal: string | undefined;
    let refused = false;
    let status = 200;
    let code: string | undefined;
    let payloadCount = 0;
    const objects: StorageObjectEvent[] = [];
    let reserved = 0;
    const outcome = (): CodecServerRequestOutcome => {
      const namespace = info === undefined || info.method === 'OPTIONS' ? undefined : info.namespace;
      return {
        status,
        code,
        route: info?.route,
        namespace,
        namespaceConfigured: namespace !== undefined && codecs.has(namespace),
        payloads: payloadCount,
        bytes: objects.reduce((sum, o) => sum + o.bytes, 0),
      };
    };
    const fail = (error: CodecServerError): void => {
      status = error.status;
      code = error.code;
      if (error.status === 503) res.setHeader('Retry-After', '1');
      if (error.status >= 500) options.onError?.(error, info);
      // A body left unread (rejected before reading) would otherwise be read and discarded to keep
      // the connection alive, however long it is: close the connection instead.
      if (!req.readableEnded && !res.headersSent) res.setHeader('Connection', 'close');
      sendJson(res, error.status, error.toJSON());
    };
    try {
      if (target instanceof CodecServerError) throw target;
      const { url, path, route } = target;
      const method = (req.method ?? 'GET').toUpperCase();
      const origin = header(req, 'origin');
      const namespace = header(req, 'x-namespace') ?? defaultNamespace;
      info = { request: req, method, path, route, namespace, origin, authorization: header(req, 'authorization') };

      if (origin !== undefined && originAllowed(origin)) {
        res.setHeader(
          'Access-Control-Allow-Origin',
          allowedOrigins === undefined && !cors?.allowCredentials ? '*' : origin,
        );
        if (cors?.allowCredentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
      }
      res.setHeader('Vary', 'Origin');
      if (method === 'OPTIONS') {
        if (origin !== undefined && !originAllowed(origin)) {
          throw new CodecServerError(403, CodecServerErrorCode.ORIGIN_NOT_ALLOWED, 'origin not allowed');
        }
        res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', CORS_ALLOWED_HEADERS);
        res.setHeader('Access-Control-Max-Age', String(cors?.maxAgeSeconds ?? 600));
        if (header(req, 'access-control-request-private-network') === 'true') {
          res.setHeader('Access-Control-Allow-Private-Network', 'true');
        }
        res.setHeader('Allow', 'POST, OPTIONS');
        status = 204;
        res.statusCode = 204;
        res.end();
        return outcome();
      }
      if (origin !== undefined && !originAllowed(origin)) {
        throw new CodecServerError(403, CodecServerErrorCode.ORIGIN_NOT_ALLOWED, 'origin not allowed');
      }
      if (options.authorize !== undefined) {
        let decision: unknown;
        try {
          decision = await options.authorize(info);
        } catch (error) {
          throw new CodecServerError(500, CodecServerErrorCode.INTERNAL, 'authorization failed', { cause: error });
        }
        const grant = decision as Partial<CodecServerAuthGrant> | null;
        if (typeof grant === 'object' && grant?.allow === true) {
          if (typeof grant.principal === 'string') principal = grant.principal;
        } else if (decision !== true) {
          refused = true;
          const rejection = decision as Partial<CodecServerAuthRejection> | false;
          const status = rejection !== false && rejection?.status === 401 ? 401 : 403;
          const message =
            rejection !== false && typeof rejection?.message === 'string'
              ? rejection.message
              : status === 401
                ? 'unauthorized'
                : 'forbidden';
          if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
          throw new CodecServerError(
            status,
            status === 401 ? CodecServerErrorCode.UNAUTHORIZED : CodecServerErrorCode.FORBIDDEN,
            message,
          );
        }
      }
      if (route === undefined) {
        throw new CodecServerError(
          404,
          CodecServerErrorCode.NO_ROUTE,
          'no such route (use /encode, /decode or /download)',
        );
      }
      if (method !== 'POST') {
        res.setHeader('Allow', 'POST, OPTIONS');
        throw new CodecServerError(405, CodecServerErrorCode.METHOD_NOT_ALLOWED, `${method} is not allowed; use POST`);
      }
      if (route === 'encode' && options.readOnly === true) {
        throw new CodecServerError(
          403,
          CodecServerErrorCode.READ_ONLY,
          'this codec server is read-only: /encode is off',
        );
      }
      const codec = codecFor(namespace);
      if (codec === undefined) {
        throw new CodecServerError(
          404,
          CodecServerErrorCode.UNKNOWN_NAMESPACE,
          `no codec configuration for namespace ${JSON.stringify(namespace)}`,
        );
      }
      const contentType = header(req, 'content-type');
      if (contentType !== undefined && !/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(contentType)) {
        throw new CodecServerError(
          415,
          CodecServerErrorCode.UNSUPPORTED_MEDIA_TYPE,
          'Content-Type must be application/json',
        );
      }
      const body = await readJsonBody(req, res, maxBodyBytes);
      checkRequestSize(body, maxPayloads, maxMetadataEntries);
      const payloads = payloadsFromJson(body);
      payloadCount = payloads.length;
      const controller = new AbortController();
      const onClose = (): void => {
        if (!res.writableEnded) controller.abort(new Error('client disconnected'));
      };
      res.on('close', onClose);
      try {
        const calls = {
          signal: controller.signal,
          onStorageObject: (object: StorageObjectEvent) => {
            objects.push(object);
            if (object.operation === 'retrieve') {
              // Count what really arrived, above what the references recorded.
              const extra = Math.max(0, object.bytes - (object.recordedBytes ?? 0));
              downloadBytes += extra;
              reserved += extra;
            }
          },
          beforeRetrieve: (references: readonly { sizeBytes: number }[]) => {
            const recorded = references.reduce((sum, r) => sum + Math.max(0, r.sizeBytes), 0);
            if (maxDownloadBytes !== undefined && downloadBytes > 0 && downloadBytes + recorded > maxDownloadBytes) {
              throw new CodecServerError(
                503,
                CodecServerErrorCode.BUSY,
                'too many bytes being downloaded; retry later',
                {
                  retryable: true,
                },
              );
            }
            downloadBytes += recorded;
            reserved += recorded;
          },
        };
        const preserve = /^(true|1)$/i.test(url.searchParams.get('preserveStorageRefs') ?? '');
        const out =
          route === 'encode'
            ? await codec.encode(payloads, calls)
            : route === 'decode'
              ? await codec.decode(payloads, { ...calls, preserveStorageRefs: preserve })
              : await codec.download(payloads, calls);
        let json: string;
        try {
          json = JSON.stringify(payloadsToJson(out));
        } catch (error) {
          throw new CodecServerError(
            502,
            CodecServerErrorCode.CODEC,
            'a codec or driver returned a malformed payload',
            {
              cause: error,
            },
          );
        }
        sendBody(res, 200, json);
      } finally {
        res.off('close', onClose);
      }
    } catch (error) {
      fail(
        error instanceof CodecServerError
          ? error
          : new CodecServerError(500, CodecServerErrorCode.INTERNAL, 'internal error', { cause: error }),
      );
    } finally {
      downloadBytes -= reserved;
      const route = info?.route;
      if (options.onAudit !== undefined && route !== undefined && info?.method === 'POST') {
        if (route !== 'decode' || objects.length > 0 || refused) {
          try {
            options.onAudit(auditEvent(req, info, route, status, code, principal, objects));
          } catch (error) {
            options.onError?.(
              new CodecServerError(500, CodecServerErrorCode.INTERNAL, 'the audit hook failed', { cause: error }),
              info,
            );
          }
        }
      }
    }
    return outcome();
  }

  /** One request (the concurrency limit, then `handle`); never rejects. */
  async function serve(
    req: IncomingMessage,
    res: ServerResponse,
    target: RequestTarget,
  ): Promise<CodecServerRequestOutcome> {
    const route = target instanceof CodecServerError ? undefined : target.route;
    if (maxConcurrent !== undefined && active >= maxConcurrent) {
      res.setHeader('Retry-After', '1');
      res.setHeader('Connection', 'close');
      const busy = new CodecServerError(503, CodecServerErrorCode.BUSY, 'too many requests at once; retry later', {
        retryable: true,
      });
      sendJson(res, 503, busy.toJSON());
      return {
        status: 503,
        code: busy.code,
        route,
        namespace: undefined,
        namespaceConfigured: false,
        payloads: 0,
        bytes: 0,
      };
    }
    active++;
    try {
      return await handle(req, res, target);
    } catch {
      // handle() never rejects; this only guards against a throwing onError or onAudit hook.
      if (!res.headersSent) sendJson(res, 500, { code: CodecServerErrorCode.INTERNAL, message: 'internal error' });
      else res.destroy();
      return {
        status: 500,
        code: CodecServerErrorCode.INTERNAL,
        route,
        namespace: undefined,
        namespaceConfigured: false,
        payloads: 0,
        bytes: 0,
      };
    } finally {
      active--;
    }
  }

  /** `serve` through the instrumentation hook, which must call it once; a failing hook cannot lose the request. */
  async function instrumented(
    hook: CodecServerInstrumentation,
    req: IncomingMessage,
    res: ServerResponse,
    target: RequestTarget,
  ): Promise<void> {
    let served: Promise<CodecServerRequestOutcome> | undefined;
    const run = (): Promise<CodecServerRequestOutcome> => {
      served ??= serve(req, res, target);
      return served;
    };
    const method = (req.method ?? 'GET').toUpperCase();
    const route = target instanceof CodecServerError ? undefined : target.route;
    try {
      await hook({ request: req, method, route }, run);
    } catch (error) {
      options.onError?.(
        new CodecServerError(500, CodecServerErrorCode.INTERNAL, 'the instrumentation hook failed', { cause: error }),
        undefined,
      );
    }
    await run();
  }

  return (req, res) => {
    const target = requestTarget(req.url, basePath);
    if (!(target instanceof CodecServerError) && target.path === HEALTH_PATH) {
      // Liveness only: no auth (probes carry no credentials), no CORS, no concurrency limit (a busy
      // server is alive), not instrumented (probes every few seconds would drown the traces).
      const method = (req.method ?? 'GET').toUpperCase();
      if (method === 'GET' || method === 'HEAD') {
        sendBody(res, 200, '{"status":"ok"}');
      } else {
        res.setHeader('Allow', 'GET, HEAD');
        const error = new CodecServerError(
          405,
          CodecServerErrorCode.METHOD_NOT_ALLOWED,
          `${method} is not allowed; use GET`,
        );
        sendJson(res, 405, error.toJSON());
      }
      return;
    }
    const done =
      instrumentation === undefined ? serve(req, res, target) : instrumented(instrumentation, req, res, target);
    done.catch(() => {
      // Neither rejects (a throwing onError aside); never leave a request unanswered.
      if (!res.headersSent) sendJson(res, 500, { code: CodecServerErrorCode.INTERNAL, message: 'internal error' });
    });
  };
}

/** A request's URL, its path relative to `basePath` and its route; or the 400 a malformed target gets. */
type RequestTarget = { url: URL; path: string; route: CodecServerRoute | undefined } | CodecServerError;

function requestTarget(raw: string | undefined, basePath: string): RequestTarget {
  let url: URL;
  try {
    url = requestUrl(raw);
  } catch (error) {
    if (error instanceof CodecServerError) return error;
    throw error;
  }
  let path = url.pathname;
  if (basePath !== '') path = path === basePath || path.startsWith(`${basePath}/`) ? path.slice(basePath.length) : '';
  path = path.replace(/\/+$/, '') || '/';
  const routeName = path.slice(1);
  const route = ROUTES.has(routeName) ? (routeName as CodecServerRoute) : undefined;
  return { url, path, route };
}

function optionalLimit(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 1)
    throw configError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function auditEvent(
  req: IncomingMessage,
  info: CodecServerRequestInfo,
  route: CodecServerRoute,
  status: number,
  code: string | undefined,
  principal: string | undefined,
  objects: readonly StorageObjectEvent[],
): CodecServerAuditEvent {
  const event: CodecServerAuditEvent = {
    time: new Date().toISOString(),
    route,
    status,
    namespace: info.namespace,
    objects: [...objects]
      .sort((a, b) => a.index - b.index)
      .map((o) => {
        const object: CodecServerAuditObject = { driver: o.driverName, bytes: o.bytes };
        if (typeof o.claimData.key === 'string') object.key = o.claimData.key;
        if (typeof o.claimData.bucket === 'string') object.bucket = o.claimData.bucket;
        return object;
      }),
    bytes: objects.reduce((sum, o) => sum + o.bytes, 0),
  };
  if (code !== undefined) event.code = code;
  if (principal !== undefined) event.principal = principal;
  if (req.socket?.remoteAddress !== undefined) event.remoteAddress = req.socket.remoteAddress;
  return event;
}

/** Bounds the work of one request before any payload is decoded (413 `E_TOO_MANY_PAYLOADS`). */
function checkRequestSize(body: unknown, maxPayloads: number, maxMetadataEntries: number): void {
  const list = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) return;
  const tooMany = (message: string): CodecServerError =>
    new CodecServerError(413, CodecServerErrorCode.TOO_MANY_PAYLOADS, message);
  if (list.length > maxPayloads) {
    throw tooMany(`request has ${list.length} payloads; at most ${maxPayloads} are accepted`);
  }
  let entries = 0;
  for (const payload of list) {
    const metadata = (payload as { metadata?: unknown } | null)?.metadata;
    if (typeof metadata === 'object' && metadata !== null) entries += Object.keys(metadata).length;
    if (entries > maxMetadataEntries) {
      throw tooMany(
        `request has more than ${maxMetadataEntries} metadata entries; at most ${maxMetadataEntries} are accepted`,
      );
    }
  }
}

/**
 * The request target as a URL. An origin-form target (`/decode?x`) is taken as a path only, so
 * `//host/decode` is the path `//host/decode`, not host `host` plus `/decode`; an absolute-form
 * target (`http://host/decode`, sent to proxies) keeps its path.
 */
function requestUrl(target: string | undefined): URL {
  const raw = target ?? '/';
  try {
    return raw.startsWith('/') ? new URL(`http://codec.invalid${raw}`) : new URL(raw, 'http://codec.invalid/');
  } catch {
    throw badRequest('malformed request target');
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendBody(res, status, JSON.stringify(body));
}

function sendBody(res: ServerResponse, status: number, json: string): void {
  if (res.headersSent || res.writableEnded) return;
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

function tooLarge(limit: number): CodecServerError {
  return new CodecServerError(413, CodecServerErrorCode.BODY_TOO_LARGE, `request body exceeds ${limit} bytes`);
}

/** Reads and parses the body; uses a body a framework already parsed (express.json()). */
async function readJsonBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<unknown> {
  const preParsed = (req as IncomingMessage & { body?: unknown }).body;
  if (req.readableEnded) {
    if (preParsed === undefined) throw badRequest('request body was already consumed by another middleware');
    if (typeof preParsed === 'string') return parseJson(Buffer.from(preParsed), limit);
    if (preParsed instanceof Uint8Array) return parseJson(preParsed, limit);
    return preParsed;
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.setHeader('Connection', 'close');
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        res.setHeader('Connection', 'close');
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve();
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(badRequest(`could not read the request body: ${error.message}`));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
  return parseJson(Buffer.concat(chunks, size), limit);
}

function parseJson(bytes: Uint8Array, limit: number): unknown {
  if (bytes.length > limit) throw tooLarge(limit);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
  if (text.trim() === '') throw badRequest('request body is empty; expected {"payloads":[...]}');
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('request body is not valid JSON');
  }
}
