/**
 * A child process for the kill -9 test: writes certificates 8 at a time and prints each serial
 * once its write has been acknowledged (the promise resolved), until it is killed.
 */
import { openStore } from '../../src/store/sqljs-store.js';

const path = process.argv[2]!;
const compactBytes = Number(process.argv[3] ?? 16 * 1024 * 1024);
const store = await openStore({ path, compactBytes });
let serial = BigInt(process.argv[4] ?? '1795722176495076734');
const der = Buffer.alloc(456, 0x5a);
process.stdout.write('ready\n');
const worker = async () => {
  for (;;) {
    const s = ++serial;
    await store.recordIssued({ deviceId: `dev-${s}`, name: 'Signing', serial: s, keyId: Buffer.alloc(20), der, notBefore: new Date(), notAfter: new Date(Date.now() + 1e10) });
    process.stdout.write(`${s}\n`);
  }
};
await Promise.all(Array.from({ length: 8 }, worker));
