/**
 * The journal's zeros written ahead of its frames (journal.ts), against a slow or failing disk:
 * node:fs's write and fdatasync are wrapped (before the store is loaded) so that the 1 MiB writes
 * of zeros can be delayed or made to fail. A separate file: the wrapping is for this process only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tempDir } from '../helpers/run.js';
import type { IssuedCertificate } from '../../src/store/types.js';
import { cert as contractCert } from './contract.js'; // loads no node:fs user: the wrapping below still applies

const SPARE = 1024 * 1024;
const fault = { delayMs: 0, writeError: undefined as string | undefined, syncError: undefined as string | undefined };
let zeroWrites = 0;
let pendingZeroWrites = 0;
let failNextSyncOn: number | undefined;

const origWrite = fs.write;
const origFdatasync = fs.fdatasync;
type WriteCb = (err: NodeJS.ErrnoException | null, written: number, buffer: Uint8Array) => void;
(fs as { write: unknown }).write = function (fd: number, buf: Uint8Array, off: number, len: number, pos: number, cb: WriteCb) {
  if (len !== SPARE) return (origWrite as unknown as (...a: unknown[]) => void).call(fs, fd, buf, off, len, pos, cb);
  zeroWrites++;
  pendingZeroWrites++;
  const finish: WriteCb = (err, n, b) => {
    pendingZeroWrites--;
    if (!err && fault.syncError) failNextSyncOn = fd; // the fdatasync the writer calls from this callback
    cb(err, n, b);
  };
  setTimeout(() => {
    if (fault.writeError) return finish(Object.assign(new Error(`${fault.writeError}: injected`), { code: fault.writeError }), 0, buf);
    (origWrite as unknown as (...a: unknown[]) => void).call(fs, fd, buf, off, len, pos, finish);
  }, fault.delayMs);
};
(fs as { fdatasync: unknown }).fdatasync = function (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) {
  if (failNextSyncOn === fd) {
    failNextSyncOn = undefined;
    return setImmediate(() => cb(Object.assign(new Error(`${fault.syncError}: injected`), { code: fault.syncError })));
  }
  return origFdatasync.call(fs, fd, cb);
};
syncBuiltinESMExports();
const { openStore } = await import('../../src/store/sqljs-store.js');
const { JournalWriter, listSegments, readSegment } = await import('../../src/store/journal.js');

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const freshDir = (name: string) => {
  const d = join(tmp.dir, `${name}-${n++}`);
  fs.mkdirSync(d);
  return d;
};
const reset = () => Object.assign(fault, { delayMs: 0, writeError: undefined, syncError: undefined });
const zerosDone = async () => {
  for (const deadline = Date.now() + 30_000; pendingZeroWrites > 0; ) {
    assert.ok(Date.now() < deadline, 'a write of zeros never finished');
    await new Promise((r) => setTimeout(r, 5));
  }
};
// The contract's certificate, issued now (the store's clock).
const cert = (serial: bigint): IssuedCertificate => contractCert(serial, undefined, { issuedAt: undefined });

/** The files as a kill -9 leaves them, opened as a new store: how many certificates it holds. */
async function afterCrash(dir: string): Promise<number> {
  const image = join(dir, 'image');
  fs.mkdirSync(image);
  for (const f of fs.readdirSync(dir)) if (f.startsWith('CADB.db')) fs.copyFileSync(join(dir, f), join(image, f));
  const s = await openStore({ path: join(image, 'CADB.db') });
  const { certificates } = await s.stats();
  await s.close();
  return certificates;
}

test('zeros still being written when the store closes land in no other file, and records after a reopen survive a crash', async () => {
  reset();
  fault.delayMs = 300;
  const dir = freshDir('close');
  const path = join(dir, 'CADB.db');
  let store = await openStore({ path });
  await store.close(); // the first segment's zeros are still on their way
  const victim = join(dir, 'victim');
  const fd = fs.openSync(victim, 'w+'); // likely the number the journal's fd had
  fs.writeSync(fd, Buffer.alloc(4096, 0x41), 0, 4096, 0);
  store = await openStore({ path });
  await Promise.all([1n, 2n, 3n].map((s) => store.recordIssued(cert(s))));
  await zerosDone();
  fs.closeSync(fd);
  assert.deepEqual(fs.readFileSync(victim), Buffer.alloc(4096, 0x41), 'another file was written to');
  assert.equal(await afterCrash(dir), 3);
  await store.close();
});

test('compacting with nothing recorded since the segment opened keeps that segment: what follows survives a crash', async () => {
  reset();
  fault.delayMs = 100;
  const dir = freshDir('same-segment');
  const store = await openStore({ path: join(dir, 'CADB.db') });
  await store.compact();
  await Promise.all([1n, 2n, 3n].map((s) => store.recordIssued(cert(s))));
  await zerosDone();
  assert.equal(listSegments(join(dir, 'CADB.db')).length, 1);
  assert.equal(await afterCrash(dir), 3);
  await store.close();
});

test('frames that reach zeros still being written wait for them; every acknowledged frame replays, across rotations', async () => {
  reset();
  fault.delayMs = 40;
  const dir = freshDir('slow');
  const path = join(dir, 'CADB.db');
  const store = await openStore({ path, compactBytes: 2 * SPARE });
  let serial = 0n;
  // ~300-byte frames: 3 MiB of them pass several writes of zeros and at least one compaction.
  for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 400 }, () => store.recordIssued(cert(++serial))));
  await zerosDone();
  const segs = listSegments(path);
  for (const s of segs) assert.equal(readSegment(s.path).tornBytes, 0, s.path);
  assert.equal(await afterCrash(dir), Number(serial));
  await store.close();
});

test('a write of zeros that fails leaves frames growing the file, is not retried at every commit, and loses nothing', async () => {
  for (const error of ['ENOSPC', 'EIO']) {
    reset();
    fault.writeError = error;
    const p = join(freshDir('nospace'), 'j.lbj.0000000000000001');
    const before = zeroWrites;
    const w = JournalWriter.open(p);
    let seq = 0;
    for (let i = 0; i < 50; i++) await Promise.all([0, 1, 2].map(() => w.append({ seq: ++seq, pad: 'x'.repeat(100 + i) })));
    await w.drain();
    await zerosDone();
    assert.equal(zeroWrites - before, 1, `${error}: attempts`);
    const c = readSegment(p);
    assert.deepEqual(c.records.map((r) => r.seq), Array.from({ length: seq }, (_, i) => i + 1));
    assert.equal(c.tornBytes, 0);
    w.close();
  }
});

test("an fdatasync of zeros that fails makes the journal refuse every later change (that error may have been a frame's)", async () => {
  reset();
  const p = join(freshDir('eio'), 'j.lbj.0000000000000001');
  fault.syncError = 'EIO';
  const w = JournalWriter.open(p); // its first zeros' fdatasync fails
  await zerosDone();
  for (const deadline = Date.now() + 30_000; !w.failed; ) {
    assert.ok(Date.now() < deadline, 'the journal did not fail');
    await new Promise((r) => setTimeout(r, 5));
  }
  await assert.rejects(w.append({ seq: 1 }), (e: unknown) => (e as { code?: string }).code === 'DB_IO' && /read-only/.test((e as Error).message));
  w.close();
});
