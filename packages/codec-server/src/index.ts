/**
 * `@x/storage-codec-server`: a codec server for the Temporal Web UI and `temporal
 * --codec-endpoint` that understands External Storage references — the embeddable request
 * handler, the payload processing behind it and a ready-to-run `node:http` server. The
 * `x-storage` operator CLI that serves it from a config file is `@x/storage-cli`.
 *
 * @packageDocumentation
 */
export {
  type BearerAuthOptions,
  createBearerAuthorizer,
  type JwksOptions,
  type JwtAuthOptions,
  MIN_STATIC_TOKEN_LENGTH,
  ROUTE_ACCESS,
  type StaticBearerToken,
} from './auth';
export {
  type CodecCallOptions,
  type CodecNamespaceConfig,
  type CodecStorageConfig,
  DEFAULT_PAYLOAD_SIZE_THRESHOLD,
  type DecodeOptions,
  NamespaceCodec,
  type PayloadCodec,
  type StorageObjectEvent,
} from './codec';
export {
  badRequest,
  CodecServerError,
  type CodecServerErrorBody,
  CodecServerErrorCode,
  type CodecServerErrorOptions,
} from './errors';
export {
  CORS_ALLOWED_HEADERS,
  type CodecServerAuditEvent,
  type CodecServerAuditObject,
  type CodecServerAuthGrant,
  type CodecServerAuthorize,
  type CodecServerAuthRejection,
  type CodecServerCorsOptions,
  type CodecServerHandler,
  type CodecServerInstrumentation,
  type CodecServerOptions,
  type CodecServerRequestInfo,
  type CodecServerRequestOutcome,
  type CodecServerRequestStart,
  type CodecServerRoute,
  createCodecServerHandler,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_NAMESPACE,
  HEALTH_PATH,
} from './handler';
export {
  type CodecServerAccess,
  compilePermissionsRegex,
  DEFAULT_PERMISSIONS_CLAIM,
  TEMPORAL_SYSTEM_NAMESPACE,
  type TemporalClaims,
  TemporalRole,
  temporalAllows,
  temporalClaimsFromPermissions,
  temporalRole,
} from './permissions';
export {
  base64ToBytes,
  bytesToBase64,
  type PayloadJson,
  type PayloadsJson,
  payloadFromJson,
  payloadsFromJson,
  payloadsToJson,
  payloadToJson,
} from './proto-json';
export {
  decodeReferencePayload,
  encodeReferencePayload,
  isReferencePayload,
  REFERENCE_ENCODING,
  REFERENCE_MESSAGE_TYPE,
  referenceFromJson,
  type StorageReference,
} from './reference';
export {
  type CodecServerTlsOptions,
  DEFAULT_CODEC_SERVER_PORT,
  type RunningCodecServer,
  type StartCodecServerOptions,
  startCodecServer,
} from './server';
