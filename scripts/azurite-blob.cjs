// Starts Azurite's Blob service (the main.js given as the first argument, then Azurite's own
// options) with its extent garbage collector effectively off.
//
// Why: Azurite frees the data of deleted blobs in a mark-and-sweep every 10 minutes, and its sweep
// removes unreferenced extents one at a time from a LokiJS collection that re-sorts its whole `id`
// index after each removal: quadratic in the number of extents, all on the event loop. After a test
// run has written and deleted some ten thousand blobs, the first sweep blocks Azurite for many
// minutes and every request in that window hangs (seen as a 60 s hook timeout in CI, and as
// Azurite at 100 % CPU inside lokijs ensureAllIndexes ← removeBatchByPositions ← deleteExtent).
// A test run's blobs fit in memory, so the sweep waits for a day instead (Azurite has no option
// for it; the interval is read from its constants when the server is built). Restart Azurite
// (bash scripts/services.sh stop azurite) to free the memory of a long-lived one.
'use strict';
const path = require('node:path');

const main = process.argv[2];
if (!main?.endsWith(path.join('blob', 'main.js'))) {
  console.error('usage: node azurite-blob.cjs <azurite>/dist/src/blob/main.js [azurite options]');
  process.exit(2);
}
const constants = require(path.join(path.dirname(main), 'utils', 'constants.js'));
if (typeof constants.DEFAULT_GC_INTERVAL_MS !== 'number') {
  console.error(`azurite-blob.cjs: ${main}: no DEFAULT_GC_INTERVAL_MS in blob/utils/constants.js (Azurite changed)`);
  process.exit(2);
}
constants.DEFAULT_GC_INTERVAL_MS = 24 * 60 * 60 * 1000;
// Azurite parses process.argv itself: make it look as if main.js had been started directly.
process.argv.splice(1, 1);
require(main);
