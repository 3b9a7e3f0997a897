/**
 * Deterministic test values shared by the tests, the activities and the workflow bundle (pure
 * code: no Node.js APIs, so the workflow sandbox can import it).
 */

/** Size of a "large" value (characters of its JSON string): well above {@link PAYLOAD_SIZE_THRESHOLD}. */
export const BIG_VALUE_SIZE = 12 * 1024;

/** The `payloadSizeThreshold` the e2e tests use: payloads of 4 KiB and more are offloaded. */
export const PAYLOAD_SIZE_THRESHOLD = 4 * 1024;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * A pseudo-random string of `size` characters determined by `label` (64-symbol alphabet, so gzip
 * shrinks it to about 3/4 but not below the threshold). Starts with `label` so a stored object is
 * easy to recognise.
 */
export function bigValue(label: string, size: number = BIG_VALUE_SIZE): string {
  let state = 2166136261;
  for (let i = 0; i < label.length; i++) state = Math.imul(state ^ label.charCodeAt(i), 16777619) >>> 0;
  const out: string[] = [label, ':'];
  let length = label.length + 1;
  while (length < size) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out.push(ALPHABET[state >>> 26] as string);
    length++;
  }
  return out.join('').slice(0, size);
}
