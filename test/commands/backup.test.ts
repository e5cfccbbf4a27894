import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, copyFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { bodyFile, cborCsrBody, curl, identity, newDevice, spawnServer, startServer, type TestServer } from '../helpers/server.js';
import { liteboot, openssl, run, tempDir } from '../helpers/run.js';

/** One enrolment with curl in the background; resolves with the serial, or undefined. */
function enrolAsync(s: TestServer, csr: Buffer): Promise<bigint | undefined> {
  const f = bodyFile(s.dir, cborCsrBody(csr));
  const out = `${f}.rsp`;
  return new Promise((resolve) => {
    const c = spawn('curl', ['-sS', '-o', out, '-w', '%{http_code}', '--cacert', join(s.dir, 'certs', 'CA.crt'), '--cert', identity(s.dir, 'BOOTSTRAP').cert, '--key', identity(s.dir, 'BOOTSTRAP').key,
      '--resolve', `localhost:${s.port}:127.0.0.1`, '-H', 'Content-Type: application/cbor', '--data-binary', `@${f}`, `https://localhost:${s.port}/api/v1/cr`]);
    let code = '';
    c.stdout.on('data', (b: Buffer) => (code += b.toString()));
    c.on('close', () => {
      if (code !== '200') return resolve(undefined);
      const der = readFileSync(out).subarray(7);
      resolve(BigInt('0x' + openssl(['x509', '-inform', 'DER', '-noout', '-serial'], { input: der }).stdout.trim().split('=')[1]));
    });
  });
}

test('db backup under load restores into a server that answers cs Status 1 for every serial issued before the backup', async () => {
  const s = await startServer();
  const restored = tempDir('liteboot-restore-');
  try {
    const before: bigint[] = [];
    for (const d of await Promise.all(Array.from({ length: 16 }, () => newDevice(s.dir)))) {
      const serial = await enrolAsync(s, d.csr);
      assert.ok(serial !== undefined);
      before.push(serial);
    }
    // Enrolments keep arriving while the backup is taken.
    const during = Promise.all((await Promise.all(Array.from({ length: 16 }, () => newDevice(s.dir)))).map((d) => enrolAsync(s, d.csr)));
    const b = liteboot(['db', 'backup', 'backup.db', '--json'], { cwd: s.dir });
    assert.equal(b.code, 0, b.stderr);
    const info = JSON.parse(b.stdout) as { certificates: number; bytes: number };
    assert.ok(info.certificates >= before.length);
    await during;
    assert.equal(statSync(join(s.dir, 'backup.db')).mode & 0o777, 0o600);
    assert.equal(run('sqlite3', [join(s.dir, 'backup.db'), 'PRAGMA integrity_check']).stdout.trim(), 'ok');
    assert.equal(liteboot(['db', 'backup', 'backup.db'], { cwd: s.dir }).code, 1, 'refuses to overwrite');

    // Restore as the README says: the certificates, the backup as CADB.db, nothing else.
    cpSync(join(s.dir, 'certs'), join(restored.dir, 'certs'), { recursive: true });
    copyFileSync(join(s.dir, 'backup.db'), join(restored.dir, 'CADB.db'));
    const r = await spawnServer(restored.dir, () => {});
    try {
      for (const serial of before) {
        const cs = curl(r, identity(restored.dir, 'BOOTSTRAP'), `/api/v1/cs/${serial}`, ['-H', 'Content-Type: application/json']);
        assert.equal(cs.body.toString(), '{"Status":1}\n', `serial ${serial}`);
      }
    } finally {
      await r.stop();
    }
  } finally {
    await s.stop();
    s.cleanup();
    restored.cleanup();
  }
});
