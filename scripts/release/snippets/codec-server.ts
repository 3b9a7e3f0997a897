// Free identifiers of the codec server README's blocks (scripts/release/check-snippets.mjs): one per line.
// @run 5
// @env CODEC_ONCALL_TOKEN='snippet-check-token-of-32-characters'
import { createCodecServerHandler } from '@x/storage-codec-server';
declare const options: import('@x/storage-codec-server').CodecServerOptions;
declare const encryptionCodec: import('@temporalio/common').PayloadCodec;
declare const app: import('fastify').FastifyInstance;
