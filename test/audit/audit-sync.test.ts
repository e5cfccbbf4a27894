/**
 * When an `issue` line reaches the disk (audit-log.ts): it is answered once written, and
 * fdatasync'd SYNC_ISSUE_MS later by a timer of its own, with nothing else written; a failure of
 * that background sync is reported and stops the log. node:fs's fdatasync is wrapped (before the
 * audit log is loaded) to count the syncs and fail one: a separate file, the wrapping is for this
 * process only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tempDir } from '../helpers/run.js';

let syncs = 0;
let failNext: string | undefined;
let onSync: (() => void) | undefined;
const origFdatasync = fs.fdatasync;
(fs as { fdatasync: unknown }).fdatasync = function (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) {
  syncs++;
  const code = failNext;
  failNext = undefined;
  const seen = onSync;
  onSync = undefined;
  const done = (err: NodeJS.ErrnoException | null) => {
    cb(err);
    seen?.();
  };
  if (code) return setImmediate(() => done(Object.assign(new Error(`${code}: injected`), { code })));
  return origFdatasync.call(fs, fd, done);
};
syncBuiltinESMExports();
const { AuditLog, SYNC_ISSUE_MS, verifyAudit } = await import('../../src/audit/audit-log.js');

const tmp = tempDir('liteboot-audit-sync-');
after(tmp.cleanup);

/** Resolves at the next fdatasync's answer; fails the test if none comes (instead of hanging). */
function nextSync(): Promise<void> {
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error('no fdatasync came within 30 s')), 30_000);
    onSync = () => {
      clearTimeout(guard);
      resolve();
    };
  });
}

test('an issue line is answered once written and reaches the disk on its own timer; on a new log, only after its first sync', async () => {
  const path = join(tmp.dir, 'timer.jsonl');
  const log = AuditLog.open(path);
  try {
    // A new, empty log has no line on disk for recovery to start from: its first issue line waits for its sync.
    await log.append({ event: 'issue', serial: '1', device: 'a' });
    assert.equal(syncs, 1, 'the first line of a new log is synced before it is answered');

    const before = syncs;
    const synced = nextSync();
    const written = Date.now();
    await log.append({ event: 'issue', serial: '2', device: 'b' });
    assert.equal(syncs, before, 'an issue line on an anchored log is answered before any fdatasync');
    assert.match(fs.readFileSync(path, 'utf8'), /"serial":"2"/, 'the line is written (the page cache) when it is answered');

    await synced; // nothing else is appended: only the timer can sync it
    assert.equal(syncs, before + 1);
    assert.ok(Date.now() - written >= SYNC_ISSUE_MS / 2, `synced ${Date.now() - written} ms after it was written: it should wait for the timer (${SYNC_ISSUE_MS} ms)`);
  } finally {
    await log.close();
  }
  assert.equal(verifyAudit(path).ok, true);
});

test('a background sync that fails is reported, and the log takes no more lines', async () => {
  const path = join(tmp.dir, 'failing.jsonl');
  const warnings: string[] = [];
  const log = AuditLog.open(path, { log: (m) => warnings.push(m) });
  try {
    await log.append({ event: 'credential', serial: '7', kind: 'bootstrap', name: 'b' }); // durable: the log is anchored
    failNext = 'EIO';
    const failed = nextSync();
    await log.append({ event: 'issue', serial: '8', device: 'c' });
    await failed;
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /cannot write the audit log .*EIO.*issue lines written in the last 200 ms may not be on disk.*no more lines until restart/);
    await assert.rejects(log.append({ event: 'revoke', serial: '8', reason: 1 }), (e: Error & { code?: string }) => e.code === 'DB_IO' && /EIO/.test(e.message));
  } finally {
    await log.close();
  }
  // What was written before the failure is intact.
  assert.deepEqual(verifyAudit(path).ok, true);
});
