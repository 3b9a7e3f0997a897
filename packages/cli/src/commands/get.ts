/**
 * `x-storage get`: the payload an External Storage reference points to.
 *
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import {
  DEFAULT_NAMESPACE,
  encodeReferencePayload,
  isReferencePayload,
  NamespaceCodec,
  payloadFromJson,
  payloadToJson,
  referenceFromJson,
} from '@x/storage-codec-server';
import type { Payload } from '@x/storage-driver-core';
import { CliExitCode, type Command, readAll, UsageError, withConfig, write } from '../command';

const HELP = `Usage: x-storage get <reference> --config <file> [--namespace <ns>] [--out <file>] [--payload]

Retrieves the payload a reference points to, runs the namespace's payload codecs, and prints
its data (or writes it to --out).

<reference> is one of:
  - inline proto3 JSON: the reference payload as shown in history
    ({"metadata":{...},"data":"<base64>","externalPayloads":[...]}), or the reference
    message itself ({"driverName":"fs","claimData":{...}})
  - the path of a file holding that JSON
  - "-" to read it from standard input

Options:
  --config <file>     Config file naming the drivers. Required.
  --namespace <ns>    Namespace whose configuration to use (default: config defaultNamespace, else ${DEFAULT_NAMESPACE})
  --out <file>        Write the payload data to <file> instead of standard output
  --payload           Print the whole decoded payload (metadata and data) as proto3 JSON
  -h, --help          Show this help
`;

function parseReference(text: string): Payload {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError('the reference is not valid JSON');
  }
  if (typeof json === 'object' && json !== null && Array.isArray((json as { payloads?: unknown }).payloads)) {
    const list = (json as { payloads: unknown[] }).payloads;
    if (list.length !== 1) throw new UsageError(`expected one reference, got ${list.length} payloads`);
    json = list[0];
  }
  if (typeof json === 'object' && json !== null && ('driverName' in json || 'driver_name' in json)) {
    const ref = referenceFromJson(json);
    return encodeReferencePayload(ref);
  }
  const payload = payloadFromJson(json);
  if (!isReferencePayload(payload)) {
    throw new UsageError(
      'the payload is not an External Storage reference (metadata messageType must be temporal.api.sdk.v1.ExternalStorageReference)',
    );
  }
  return payload;
}

/** `x-storage get`. */
export const get: Command = {
  name: 'get',
  summary: 'Print or save the payload an External Storage reference points to',
  help: HELP,
  options: {
    config: { type: 'string' },
    namespace: { type: 'string' },
    out: { type: 'string' },
    payload: { type: 'boolean' },
  },
  async run(args, io) {
    if (args.positionals.length !== 1)
      throw new UsageError('get takes exactly one <reference> (inline JSON, a file, or -)');
    const source = args.positionals[0] as string;
    let text: string;
    if (source === '-') text = await readAll(io.stdin);
    else if (source.trimStart().startsWith('{')) text = source;
    else {
      try {
        text = await readFile(source, 'utf8');
      } catch (error) {
        throw new UsageError(`cannot read reference file ${source}: ${(error as Error).message}`);
      }
    }
    const reference = parseReference(text);
    return withConfig(args, async (config) => {
      const namespace = args.string('namespace') ?? config.server.defaultNamespace ?? DEFAULT_NAMESPACE;
      const nsConfig = config.server.namespaces?.[namespace] ?? config.server.otherNamespaces;
      if (nsConfig === undefined)
        throw new UsageError(`no configuration for namespace ${JSON.stringify(namespace)} in ${config.file}`);
      const [payload] = await new NamespaceCodec(namespace, nsConfig).download([reference]);
      const out = args.string('out');
      const bytes: Uint8Array = args.flag('payload')
        ? Buffer.from(`${JSON.stringify(payloadToJson(payload as Payload), null, 2)}\n`)
        : ((payload as Payload).data ?? new Uint8Array(0));
      if (out !== undefined) {
        await writeFile(out, bytes);
        await write(io.stderr, `wrote ${bytes.length} bytes to ${out}\n`);
      } else {
        await write(io.stdout, bytes);
      }
      return CliExitCode.OK;
    });
  },
};
