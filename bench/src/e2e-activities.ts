/**
 * The end-to-end workload's activity (run by the worker process).
 *
 * @module
 */

/** Returns a copy of `input` with its first byte inverted: as large as the input, other bytes. */
export async function transformActivity(input: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(input);
  if (out.length > 0) out[0] = (out[0] as number) ^ 0xff;
  return out;
}
