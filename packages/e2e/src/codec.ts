/** A gzip payload codec, to compose with External Storage (codecs run before storage on the way out). */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { decodePayload, encodePayload } from '@x/storage-driver-core';

/** `metadata.encoding` of a payload {@link GzipPayloadCodec} wrote. */
export const GZIP_ENCODING = 'binary/gzip';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Wraps each payload as `{ metadata: { encoding: "binary/gzip" }, data: gzip(Payload protobuf) }`
 * and unwraps it on decode; other payloads pass through.
 */
export class GzipPayloadCodec implements PayloadCodec {
  /** Number of payloads encoded so far. */
  encoded = 0;

  /** Gzips every payload. */
  async encode(payloads: Payload[]): Promise<Payload[]> {
    this.encoded += payloads.length;
    return payloads.map((p) => ({
      metadata: { encoding: encoder.encode(GZIP_ENCODING) },
      data: new Uint8Array(gzipSync(encodePayload(p))),
    }));
  }

  /** Gunzips the payloads this codec wrote. */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) =>
      p.metadata?.encoding && decoder.decode(p.metadata.encoding) === GZIP_ENCODING
        ? decodePayload(new Uint8Array(gunzipSync(p.data ?? new Uint8Array(0))))
        : p,
    );
  }
}
