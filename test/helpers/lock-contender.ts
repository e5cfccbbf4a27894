/**
 * A child process for the lock test: on `open <db> <at>` it waits until the wall clock reads
 * `<at>` (so that two contenders start the same instant), opens the store as a writer and prints
 * `held` or `refused <code>`; on `close` it closes the store and prints `closed`.
 */
import { createInterface } from 'node:readline';
import { isLitebootError } from '../../src/errors.js';
import { openStore, type SqlJsStore } from '../../src/store/sqljs-store.js';

// Load sql.js before the first trial, so that both contenders are equally warm.
await (await openStore({ path: process.argv[2]!, readOnly: false })).close();
let store: SqlJsStore | undefined;
process.stdout.write('ready\n');
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, path, at] = line.split(' ');
  if (cmd === 'open') {
    while (Date.now() < Number(at)) {
      /* spin: both contenders leave this loop within the same millisecond */
    }
    try {
      store = await openStore({ path: path! });
      process.stdout.write('held\n');
    } catch (e) {
      process.stdout.write(`refused ${isLitebootError(e) ? e.code : String(e).replace(/\n/g, ' ')}\n`);
    }
  } else if (cmd === 'close') {
    await store?.close();
    store = undefined;
    process.stdout.write('closed\n');
  }
}
