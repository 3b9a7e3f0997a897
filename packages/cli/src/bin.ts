#!/usr/bin/env node
/**
 * Entry point of the `x-storage` executable.
 *
 * @module
 */
import { runCli } from './cli';

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`x-storage: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
