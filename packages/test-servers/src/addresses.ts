/**
 * Addresses of the shared loopback servers that `bash scripts/services.sh start` runs, read from
 * the `XSTORAGE_*` variables that `bash scripts/services.sh env` prints — the one place a test,
 * the soak or the bench learns where a server listens.
 *
 * @module
 */

/** Where the shared servers of `scripts/services.sh` listen. */
export interface TestServices {
  /** Standalone Redis URL (`XSTORAGE_REDIS_URL`). */
  readonly redisUrl: string;
  /** Redis Cluster startup nodes (`XSTORAGE_REDIS_CLUSTER_NODES`, comma-separated `host:port`). */
  readonly redisClusterNodes: readonly { readonly host: string; readonly port: number }[];
  /** PostgreSQL connection string (`XSTORAGE_POSTGRES_URL`). */
  readonly postgresUrl: string;
  /** S3 (moto) endpoint (`XSTORAGE_S3_ENDPOINT`). */
  readonly s3Endpoint: string;
  /** GCS emulator (`fake-gcs-server`) endpoint (`XSTORAGE_GCS_ENDPOINT`). */
  readonly gcsEndpoint: string;
  /** Project id given to GCS clients (`XSTORAGE_GCS_PROJECT_ID`; without one a client asks the GCE metadata server). */
  readonly gcsProjectId: string;
  /** Azurite's development account name (`XSTORAGE_AZURITE_ACCOUNT_NAME`). */
  readonly azuriteAccountName: string;
  /** Azurite's development account key (`XSTORAGE_AZURITE_ACCOUNT_KEY`; public, documented by Microsoft). */
  readonly azuriteAccountKey: string;
  /** Azurite's Blob endpoint, account included (`XSTORAGE_AZURITE_BLOB_ENDPOINT`). */
  readonly azuriteBlobEndpoint: string;
  /** Azurite connection string (`XSTORAGE_AZURITE_CONNECTION_STRING`). */
  readonly azuriteConnectionString: string;
}

/** Azurite's fixed development account key (public, documented by Microsoft). */
const AZURITE_DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Reads the `XSTORAGE_*` variables, falling back to the defaults `bash scripts/services.sh env` prints. */
export function servicesFromEnv(env: NodeJS.ProcessEnv = process.env): TestServices {
  const azuriteAccountName = env.XSTORAGE_AZURITE_ACCOUNT_NAME ?? 'devstoreaccount1';
  const azuriteAccountKey = env.XSTORAGE_AZURITE_ACCOUNT_KEY ?? AZURITE_DEV_KEY;
  const azuriteBlobEndpoint = env.XSTORAGE_AZURITE_BLOB_ENDPOINT ?? `http://127.0.0.1:10010/${azuriteAccountName}`;
  return {
    redisUrl: env.XSTORAGE_REDIS_URL ?? 'redis://127.0.0.1:6391',
    redisClusterNodes: (env.XSTORAGE_REDIS_CLUSTER_NODES ?? '127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303')
      .split(',')
      .map((node) => {
        const [host, port] = node.trim().split(':');
        return { host: host ?? '127.0.0.1', port: Number(port) };
      }),
    postgresUrl: env.XSTORAGE_POSTGRES_URL ?? 'postgres://xstorage:xstorage-secret@127.0.0.1:5442/xstorage',
    s3Endpoint: env.XSTORAGE_S3_ENDPOINT ?? 'http://127.0.0.1:5011',
    gcsEndpoint: env.XSTORAGE_GCS_ENDPOINT ?? 'http://127.0.0.1:4453',
    gcsProjectId: env.XSTORAGE_GCS_PROJECT_ID ?? 'xstorage-test',
    azuriteAccountName,
    azuriteAccountKey,
    azuriteBlobEndpoint,
    azuriteConnectionString:
      env.XSTORAGE_AZURITE_CONNECTION_STRING ??
      `DefaultEndpointsProtocol=http;AccountName=${azuriteAccountName};AccountKey=${azuriteAccountKey};BlobEndpoint=${azuriteBlobEndpoint};`,
  };
}

/** The shared servers of this process's environment ({@link servicesFromEnv} of `process.env`). */
export const SERVICES: TestServices = servicesFromEnv();
