/**
 * Temporal's permission mapping, case by case as the server's own tests state it
 * (temporalio/temporal common/authorization/default_jwt_claim_mapper_test.go,
 * default_authorizer_test.go). Over HTTP: auth.test.ts.
 */
import {
  compilePermissionsRegex,
  TEMPORAL_SYSTEM_NAMESPACE,
  TemporalRole,
  temporalAllows,
  temporalClaimsFromPermissions,
  temporalRole,
} from '../src';

const { WORKER, READER, WRITER, ADMIN, NONE } = TemporalRole;

it('maps <namespace>:<role> entries to role bit masks, temporal-system to the cluster', () => {
  // TestTokenWithAdminPermissions: ["temporal-system:admin", "default:read"]
  const admin = temporalClaimsFromPermissions([`${TEMPORAL_SYSTEM_NAMESPACE}:admin`, 'default:read']);
  expect(admin.system).toBe(ADMIN);
  expect([...admin.namespaces]).toEqual([['default', READER]]);
  // TestTokenWithReaderWriterWorkerPermissions: roles of one namespace are OR-ed.
  const rww = temporalClaimsFromPermissions(['default:read', 'default:write', 'default:worker']);
  expect(rww.system).toBe(NONE);
  expect(rww.namespaces.get('default')).toBe(READER | WRITER | WORKER);
  // TestNamespacePermissionCaseSensitive: namespaces exact, "Temporal-system" is a namespace.
  const cased = temporalClaimsFromPermissions(['Temporal-system:admin', 'Foo:read']);
  expect(cased.system).toBe(NONE);
  expect(cased.namespaces.get('Foo')).toBe(READER);
  expect(cased.namespaces.get('foo')).toBeUndefined();
  expect(cased.namespaces.get('Temporal-system')).toBe(ADMIN);
  // Roles are lower-cased; unknown roles, entries without ':' and non-strings add nothing.
  expect(temporalRole('ReAd')).toBe(READER);
  expect(temporalRole('owner')).toBe(NONE);
  const odd = temporalClaimsFromPermissions(['a:owner', 'b', 42, { a: 1 }, 'c:read:more', ':read']);
  expect([...odd.namespaces]).toEqual([
    ['a', NONE],
    ['c', NONE],
    ['', READER],
  ]);
  expect(temporalClaimsFromPermissions('default:read').namespaces.size).toBe(0);
});

it('reads permissionsRegex entries (TestTokenWithReaderWriterWorkerPermissionsRegex)', () => {
  const regex = compilePermissionsRegex('(?P<role>\\w+):(?P<namespace>\\w+)');
  const claims = temporalClaimsFromPermissions(['read:default', 'write:default', 'worker:default', 'nope'], regex);
  expect(claims.namespaces.get('default')).toBe(READER | WRITER | WORKER);
  expect(() => compilePermissionsRegex('(?P<ns>\\w+):(?P<role>\\w+)')).toThrow(/"namespace" and "role"/);
});

it('authorizes as the default authorizer: (system | namespace) >= the role the access needs', () => {
  const claims = (system: number, ns: Record<string, number>) => ({ system, namespaces: new Map(Object.entries(ns)) });
  // System reader reads everywhere and writes nowhere; system writer writes everywhere.
  expect(temporalAllows(claims(READER, {}), 'bar', 'read')).toBe(true);
  expect(temporalAllows(claims(READER, {}), 'bar', 'write')).toBe(false);
  expect(temporalAllows(claims(WRITER, {}), 'bar', 'write')).toBe(true);
  // Namespace roles apply to that namespace only, compared exactly (BarAdminOnFooBAR: deny).
  expect(temporalAllows(claims(NONE, { bar: ADMIN }), 'bar', 'write')).toBe(true);
  expect(temporalAllows(claims(NONE, { bar: ADMIN }), 'BAR', 'read')).toBe(false);
  // NamespaceReaderOnStartWorkflow: deny; NamespaceWriterOnOperatorNamespaceRead: allow.
  expect(temporalAllows(claims(NONE, { ns: READER }), 'ns', 'write')).toBe(false);
  expect(temporalAllows(claims(NONE, { ns: WRITER }), 'ns', 'read')).toBe(true);
  // The comparison is numeric: worker (1) alone reads nothing; worker|reader (3) writes nothing.
  expect(temporalAllows(claims(NONE, { ns: WORKER }), 'ns', 'read')).toBe(false);
  expect(temporalAllows(claims(NONE, { ns: WORKER | READER }), 'ns', 'write')).toBe(false);
  expect(temporalAllows(claims(WORKER, { ns: READER }), 'ns', 'read')).toBe(true);
});
