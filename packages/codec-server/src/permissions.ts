/**
 * Temporal's permission model, as the Temporal server's default JWT claim mapper and default
 * authorizer apply it (temporalio/temporal, `common/authorization/default_jwt_claim_mapper.go`,
 * `default_authorizer.go`, `roles.go`), so that a token gets exactly the namespaces on the codec
 * server that it gets on the cluster:
 *
 * - the permissions claim (default `permissions`) is an array of `<namespace>:<role>` strings,
 *   split at the first `:`; entries that are not strings, have no `:` (or do not match
 *   `permissionsRegex`) are ignored, and a claim that is not an array grants nothing;
 * - roles are `worker`, `read`, `write`, `admin` (case-insensitive; anything else adds nothing),
 *   kept as a bit mask per namespace (worker 1, reader 2, writer 4, admin 8), several entries for
 *   one namespace OR-ed together;
 * - the namespace `temporal-system` means the whole cluster: its roles apply to every namespace;
 *   namespace names are compared exactly (`Foo` is not `foo`, `Temporal-system` is an ordinary
 *   namespace);
 * - a call is allowed when `system | namespaces[ns]`, compared as a number, is at least the role
 *   the call needs: reader for read-only calls, writer for writes (so `worker` alone, or
 *   `worker` with `read`, grants no write, and `worker` alone grants no read either).
 *
 * @module
 */

/** Temporal's roles, as the bit values of the server's `authorization.Role`. */
export const TemporalRole = {
  /** No role (`RoleUndefined`). */
  NONE: 0,
  /** `worker` (`RoleWorker`). */
  WORKER: 1,
  /** `read` (`RoleReader`). */
  READER: 2,
  /** `write` (`RoleWriter`). */
  WRITER: 4,
  /** `admin` (`RoleAdmin`). */
  ADMIN: 8,
} as const;

/** The namespace whose roles apply to the whole cluster (the server's `primitives.SystemLocalNamespace`). */
export const TEMPORAL_SYSTEM_NAMESPACE = 'temporal-system';

/** Default name of the permissions claim (the server's `defaultPermissionsClaimName`). */
export const DEFAULT_PERMISSIONS_CLAIM = 'permissions';

/** What a codec-server route needs: `read` (`/decode`, `/download`) or `write` (`/encode`). */
export type CodecServerAccess = 'read' | 'write';

/** Roles of one subject, as the Temporal server's `authorization.Claims`. */
export interface TemporalClaims {
  /** Roles in every namespace (from `temporal-system:<role>` entries), a {@link TemporalRole} bit mask. */
  system: number;
  /** Roles per namespace (exact names), {@link TemporalRole} bit masks. */
  namespaces: ReadonlyMap<string, number>;
}

/** The role bit of one role name, case-insensitive; {@link TemporalRole.NONE} for anything else. */
export function temporalRole(role: string): number {
  switch (role.toLowerCase()) {
    case 'read':
      return TemporalRole.READER;
    case 'write':
      return TemporalRole.WRITER;
    case 'admin':
      return TemporalRole.ADMIN;
    case 'worker':
      return TemporalRole.WORKER;
    default:
      return TemporalRole.NONE;
  }
}

/**
 * Compiles a `permissionsRegex` (the server's `authorization.permissionsRegex`): a regular
 * expression with the named groups `namespace` and `role`, in Go syntax (`(?P<namespace>…)`) or
 * JavaScript syntax (`(?<namespace>…)`). Like Go's `FindStringSubmatch`, it matches anywhere in
 * an entry unless anchored.
 *
 * @throws Error if the expression does not compile or lacks one of the two groups (the server
 *   logs a warning and ignores such an expression; a codec server refuses to start instead).
 */
export function compilePermissionsRegex(source: string): RegExp {
  const regex = new RegExp(source.replace(/\(\?P</g, '(?<'));
  const groups = new Set([...source.matchAll(/\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1]));
  if (!groups.has('namespace') || !groups.has('role')) {
    throw new Error('permissionsRegex must have the named groups "namespace" and "role"');
  }
  return regex;
}

/**
 * Reads a permissions claim the way the server's default JWT claim mapper does (see the module
 * documentation). `permissions` is the claim's raw value.
 *
 * @param permissionsRegex - from {@link compilePermissionsRegex}; default: split at the first `:`.
 */
export function temporalClaimsFromPermissions(permissions: unknown, permissionsRegex?: RegExp): TemporalClaims {
  let system: number = TemporalRole.NONE;
  const namespaces = new Map<string, number>();
  if (!Array.isArray(permissions)) return { system, namespaces };
  for (const permission of permissions) {
    if (typeof permission !== 'string') continue;
    let namespace: string;
    let role: string;
    if (permissionsRegex !== undefined) {
      const match = permissionsRegex.exec(permission);
      if (match === null) continue;
      namespace = match.groups?.namespace ?? '';
      role = match.groups?.role ?? '';
    } else {
      const colon = permission.indexOf(':');
      if (colon === -1) continue;
      namespace = permission.slice(0, colon);
      role = permission.slice(colon + 1);
    }
    if (namespace === TEMPORAL_SYSTEM_NAMESPACE) system |= temporalRole(role);
    else namespaces.set(namespace, (namespaces.get(namespace) ?? TemporalRole.NONE) | temporalRole(role));
  }
  return { system, namespaces };
}

/**
 * Whether `claims` allow `access` in `namespace`, as the server's default authorizer decides a
 * namespace-scoped call: `(system | namespaces[namespace]) >= required`, where `read` requires
 * {@link TemporalRole.READER} and `write` requires {@link TemporalRole.WRITER}.
 */
export function temporalAllows(claims: TemporalClaims, namespace: string, access: CodecServerAccess): boolean {
  const has = claims.system | (claims.namespaces.get(namespace) ?? TemporalRole.NONE);
  return has >= (access === 'read' ? TemporalRole.READER : TemporalRole.WRITER);
}
