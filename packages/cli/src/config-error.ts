/**
 * The error of an invalid config file.
 *
 * @module
 */

/** A configuration error, with the path of the offending field in the message. */
export class ConfigError extends Error {
  /**
   * @param message - what is wrong, prefixed with the field path.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
