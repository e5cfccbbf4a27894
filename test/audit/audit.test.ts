import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditLog, verifyAudit } from '../../src/audit/audit-log.js';
import { bodyFile, cborCsrBody, curl, identity, newDevice, spawnServer, startServer, type TestServer } from '../helpers/server.js';
import { liteboot, openssl, tempDir } from '../helpers/run.js';

const t = tempDir('liteboot-audit-');
after(() => t.cleanup());

function enrol(s: TestServer, who = 'BOOTSTRAP', csr: Buffer): { status: number; serial?: bigint; der?: Buffer } {
  const r = curl(s, identity(s.dir, who), '/api/v1/cr', ['-H', 'Content-Type: application/cbor', '--data-binary', `@${bodyFile(s.dir, cborCsrBody(csr))}`]);
  if (r.status !== 200) return { status: r.status };
  const der = r.body.subarray(7);
  const out = openssl(['x509', '-inform', 'DER', '-noout', '-serial'], { input: der });
  return { status: 200, der, serial: BigInt('0x' + out.stdout.trim().split('=')[1]) };
}

const lines = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('the audit log of a running server', () => {
  it('records issuance, revocation and credentials with who and how; audit show answers "who issued this"; audit verify passes', async () => {
    const s = await startServer();
    try {
      const dev = await newDevice(s.dir);
      const a = enrol(s, 'BOOTSTRAP', dev.csr);
      assert.equal(a.status, 200);
      const byOp = enrol(s, 'OPERATOR-alice', (await newDevice(s.dir)).csr);
      const k = curl(s, identity(s.dir, 'OPERATOR-alice'), '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${a.serial},"Reason":1}`]);
      assert.equal(k.status, 200);
      const log = join(s.dir, 'audit.jsonl');
      assert.equal(statSync(log).mode & 0o777, 0o600);

      const show = liteboot(['audit', 'show', '--serial', String(a.serial), '--json'], { cwd: s.dir });
      assert.equal(show.code, 0, show.stderr);
      const rows = show.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(rows.map((r) => r.event), ['issue', 'revoke']);
      const bootstrapSerial = BigInt('0x' + openssl(['x509', '-in', join(s.dir, 'certs', 'BOOTSTRAP.crt'), '-noout', '-serial']).stdout.trim().split('=')[1]);
      assert.equal(rows[0]!.by, `bootstrap:${bootstrapSerial}`);
      assert.equal(rows[0]!.via, 'cr');
      assert.equal(rows[0]!.device, dev.id);
      assert.match(String(rows[0]!.keyId), /^[0-9a-f]{40}$/);
      const ski = openssl(['x509', '-inform', 'DER', '-noout', '-ext', 'subjectKeyIdentifier'], { input: a.der! }).stdout;
      assert.equal(String(rows[0]!.keyId).toUpperCase().match(/../g)!.join(':'), /([0-9A-F:]{59})/.exec(ski)![1]);
      assert.equal(rows[1]!.by, 'operator:alice');
      assert.equal(rows[1]!.reason, 1);
      const all = lines(log);
      assert.ok(all.some((r) => r.event === 'credential' && r.kind === 'bootstrap' && r.serial === bootstrapSerial.toString()), 'the credential found in certs/');
      assert.ok(all.some((r) => r.event === 'issue' && r.serial === byOp.serial!.toString() && r.by === 'operator:alice'));

      const v = liteboot(['audit', 'verify'], { cwd: s.dir });
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.stdout, `intact: ${all.length} lines in 1 file\n`);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('audit verify and show read the log the server writes: [server] audit_log, else beside the database; the one the server was told to use', async () => {
    const s = await startServer({ toml: 'audit_log = "trail.jsonl"' });
    after(() => s.cleanup());
    try {
      const a = enrol(s, 'BOOTSTRAP', (await newDevice(s.dir)).csr);
      assert.equal(a.status, 200);
      const v = liteboot(['audit', 'verify', '--json'], { cwd: s.dir });
      assert.equal(v.code, 0, v.stderr);
      const verdict = JSON.parse(v.stdout) as { ok: boolean; files: string[]; lines: number };
      assert.deepEqual(verdict.files, [join(s.dir, 'trail.jsonl')]);
      assert.ok(verdict.ok && verdict.lines >= 1);
      const show = liteboot(['audit', 'show', '--serial', String(a.serial), '--json'], { cwd: s.dir });
      assert.equal(show.code, 0, show.stderr);
      assert.equal((JSON.parse(show.stdout) as { event: string }).event, 'issue');
    } finally {
      await s.stop();
    }
    // Beside a database named by --db, where no audit_log is configured; a missing log is said so.
    writeFileSync(join(s.dir, '.liteboot.toml'), '[server]\nhubname = "test-hub"\n');
    copyFileSync(join(s.dir, 'trail.jsonl'), join(s.dir, 'certs', 'audit.jsonl'));
    const beside = liteboot(['audit', 'verify', '--db', join(s.dir, 'certs', 'CADB.db')], { cwd: s.dir });
    assert.equal(beside.code, 0, beside.stderr);
    const missing = liteboot(['audit', 'show', '--serial', '1'], { cwd: s.dir });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no audit log at .*audit\.jsonl: run liteboot where the server keeps it, or pass --file FILE/);
    // Turned off in the configuration: said so, not a missing file.
    writeFileSync(join(s.dir, '.liteboot.toml'), '[server]\naudit_log = ""\n');
    const off = liteboot(['audit', 'verify'], { cwd: s.dir });
    assert.notEqual(off.code, 0);
    assert.match(off.stderr, /the audit log is turned off in .*\.liteboot\.toml \(audit_log = ""\)/);
  });

  it('after a kill -9 under load and a restart, every certificate a client received has its issue line and the chain holds', async () => {
    const s = await startServer();
    try {
      const csrs = await Promise.all(Array.from({ length: 40 }, () => newDevice(s.dir)));
      const received: string[] = [];
      // 40 enrolments in flight at once with curl; the server is killed as soon as 10 are answered.
      const runs = csrs.map(
        (d) =>
          new Promise<void>((resolve) => {
            const f = bodyFile(s.dir, cborCsrBody(d.csr));
            const out = join(s.dir, `rsp-${d.id}`);
            const c = spawn('curl', ['-sS', '-o', out, '-w', '%{http_code}', '--cacert', join(s.dir, 'certs', 'CA.crt'), '--cert', identity(s.dir, 'BOOTSTRAP').cert, '--key', identity(s.dir, 'BOOTSTRAP').key,
              '--resolve', `localhost:${s.port}:127.0.0.1`, '-H', 'Content-Type: application/cbor', '--data-binary', `@${f}`, `https://localhost:${s.port}/api/v1/cr`]);
            let code = '';
            c.stdout.on('data', (b: Buffer) => (code += b.toString()));
            c.on('close', () => {
              if (code === '200') {
                const der = readFileSync(out).subarray(7);
                received.push(BigInt('0x' + openssl(['x509', '-inform', 'DER', '-noout', '-serial'], { input: der }).stdout.trim().split('=')[1]).toString());
                if (received.length === 10) s.child.kill('SIGKILL');
              }
              resolve();
            });
          }),
      );
      await Promise.all(runs);
      await s.stop();
      assert.ok(received.length >= 10, `${received.length} received`);
      const again = await spawnServer(s.dir, () => {});
      try {
        assert.equal(enrol(again, 'BOOTSTRAP', (await newDevice(s.dir)).csr).status, 200);
      } finally {
        await again.stop();
      }
      const issued = new Set(lines(join(s.dir, 'audit.jsonl')).filter((r) => r.event === 'issue').map((r) => r.serial));
      for (const serial of received) assert.ok(issued.has(serial), `serial ${serial} was received but has no audit line`);
      const v = liteboot(['audit', 'verify', '--json'], { cwd: s.dir });
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.equal(JSON.parse(v.stdout).ok, true);
    } finally {
      s.cleanup();
    }
  });
});

describe('audit recovery after a crash', () => {
  it('issue lines lost with the machine (written, not yet synced) are written again from the store at the next start, and the chain holds', async () => {
    // `issue` lines are fdatasync'd within 200 ms, not before the answer (audit-log.ts): a power
    // loss can take the last ones. Their certificates are durable in the store; the next start
    // must write every one of them again. The loss is simulated by cutting the file back.
    const s = await startServer();
    try {
      const serials: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = enrol(s, 'BOOTSTRAP', (await newDevice(s.dir)).csr);
        assert.equal(r.status, 200);
        serials.push(r.serial!.toString());
      }
      s.child.kill('SIGKILL');
      await s.exited;
      const path = join(s.dir, 'audit.jsonl');
      const all = readFileSync(path, 'utf8').trimEnd().split('\n');
      assert.equal(all.slice(-3).filter((l) => (JSON.parse(l) as { event: string }).event === 'issue').length, 3, 'the last three lines are issue lines');
      writeFileSync(path, all.slice(0, -3).join('\n') + '\n');
      const again = await spawnServer(s.dir, () => {});
      try {
        await again.waitForStderr(/WARN audit: wrote the lines of 3 certificate\(s\) recorded just before a crash \(marked recovered; they may have been delivered\)/);
      } finally {
        await again.stop();
      }
      const recs = lines(path).filter((r) => r.event === 'issue');
      for (const serial of serials) assert.equal(recs.filter((r) => r.serial === serial).length, 1, `one issue line for ${serial}`);
      assert.deepEqual(recs.filter((r) => r.recovered === true).map((r) => r.serial).sort(), serials.slice(-3).sort());
      const v = liteboot(['audit', 'verify', '--json'], { cwd: s.dir });
      assert.equal(v.code, 0, v.stdout + v.stderr);
    } finally {
      s.cleanup();
    }
  });

  it('a certificate recorded whose line was not yet written (the two writes run at once) gets its line at the next start', async () => {
    const s = await startServer();
    try {
      assert.equal(enrol(s, 'BOOTSTRAP', (await newDevice(s.dir)).csr).status, 200);
      await s.stop();
      // The state a kill -9 can leave: the record durable, its audit line not.
      const { openStore } = await import('../../src/store/sqljs-store.js');
      const store = await openStore({ path: join(s.dir, 'CADB.db') });
      const serial = 1796162000000000001n;
      await store.recordIssued({ deviceId: 'b2b9f0a4-5d0c-4d7e-9a51-2f3f7e3c2a11', name: 'Signing', serial, keyId: Buffer.alloc(20, 7), der: Buffer.from([0x30, 0]), notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000), issuedBy: 'bootstrap:1', issuedAt: new Date() });
      await store.close();
      const again = await spawnServer(s.dir, () => {});
      try {
        await again.waitForStderr(/WARN audit: wrote the lines of 1 certificate\(s\) recorded just before a crash/);
      } finally {
        await again.stop();
      }
      const rec = lines(join(s.dir, 'audit.jsonl')).find((r) => r.serial === serial.toString());
      assert.ok(rec, 'the recovered line');
      assert.equal(rec.event, 'issue');
      assert.equal(rec.recovered, true);
      assert.equal(rec.keyId, '07'.repeat(20));
      assert.equal(liteboot(['audit', 'verify'], { cwd: s.dir }).code, 0);
      // A third start finds nothing more to recover.
      const third = await spawnServer(s.dir, () => {});
      await third.stop();
      assert.equal(lines(join(s.dir, 'audit.jsonl')).filter((r) => r.serial === serial.toString()).length, 1);
    } finally {
      s.cleanup();
    }
  });
});

describe('audit verify finds tampering', () => {
  const base = join(t.dir, 'intact.jsonl');
  it('writes a log to tamper with', async () => {
    const log = AuditLog.open(base);
    for (let i = 0; i < 6; i++) await log.append({ event: 'issue', serial: String(1000 + i), device: `dev-${i}`, by: 'bootstrap:1' });
    await log.close();
    assert.equal(liteboot(['audit', 'verify', base], { cwd: t.dir }).code, 0);
  });

  const cases: [string, (rows: string[]) => string[], RegExp][] = [
    ['one edited byte', (r) => r.map((l, i) => (i === 2 ? l.replace('"serial":"1002"', '"serial":"1003"') : l)), /intact\.jsonl-one edited byte:3: its contents do not match its hash: the line was edited\n$/],
    ['one removed line', (r) => r.filter((_, i) => i !== 3), /intact\.jsonl-one removed line:4: sequence 5 follows 3: lines were removed or reordered\n$/],
    ['two lines swapped', (r) => [r[0]!, r[2]!, r[1]!, ...r.slice(3)], /intact\.jsonl-two lines swapped:2: sequence 3 follows 1: lines were removed or reordered\n$/],
  ];
  for (const [name, tamper, expected] of cases) {
    it(`fails on ${name}, naming the first bad line`, () => {
      const copy = `${base}-${name}`;
      writeFileSync(copy, tamper(readFileSync(base, 'utf8').trimEnd().split('\n')).join('\n') + '\n');
      const r = liteboot(['audit', 'verify', copy], { cwd: t.dir });
      assert.equal(r.code, 1);
      assert.match(r.stderr, expected);
    });
  }

  it('a rewritten line whose hash was recomputed still breaks the chain at the next line', async () => {
    const { createHash } = await import('node:crypto');
    const rows = readFileSync(base, 'utf8').trimEnd().split('\n');
    const rec = JSON.parse(rows[1]!) as Record<string, unknown>;
    rec.by = 'operator:mallory';
    const { hash: _h, ...rest } = rec;
    void _h;
    rec.hash = createHash('sha256').update(JSON.stringify(rest)).digest('hex');
    rows[1] = JSON.stringify(rec);
    const copy = `${base}-rehashed`;
    writeFileSync(copy, rows.join('\n') + '\n');
    const v = verifyAudit(copy);
    assert.equal(v.ok, false);
    assert.deepEqual(v.bad, { file: copy, line: 3, why: 'it does not follow the line before it: lines were removed, reordered or replaced' });
  });

  it('one writer a log: a second open of a log in use is refused with what to do, and works once the first is closed', async () => {
    const path = join(t.dir, 'one-writer.jsonl');
    const first = AuditLog.open(path);
    await first.append({ event: 'revoke', serial: '1', by: 'operator:alice', reason: 1 });
    assert.throws(
      () => AuditLog.open(path),
      (e: unknown) => (e as { code?: string }).code === 'DB_LOCKED' && /the audit log .*one-writer\.jsonl is being written by another liteboot server \(process \d+\): each server needs its own; set audit_log/.test((e as Error).message),
    );
    await first.close();
    const second = AuditLog.open(path);
    await second.append({ event: 'revoke', serial: '2', by: 'operator:alice', reason: 1 });
    await second.close();
    assert.equal(verifyAudit(path).lines, 2);
  });

  it('rotation keeps the chain across files; a lost rotated file is found', async () => {
    const path = join(t.dir, 'rot', 'audit.jsonl');
    const { mkdirSync, rmSync } = await import('node:fs');
    mkdirSync(join(t.dir, 'rot'));
    let log = AuditLog.open(path, { rotateBytes: 600 });
    for (let i = 0; i < 12; i++) await log.append({ event: 'revoke', serial: String(i), by: 'operator:alice', reason: 1 });
    await log.close();
    // Reopened, it goes on from the last line of the newest file.
    log = AuditLog.open(path, { rotateBytes: 600 });
    await log.append({ event: 'revoke', serial: '99', by: 'operator:alice', reason: 4 });
    await log.close();
    const files = readdirSync(join(t.dir, 'rot')).sort();
    assert.ok(files.length >= 3, files.join(' '));
    const v = verifyAudit(path);
    assert.equal(v.ok, true, JSON.stringify(v.bad));
    assert.equal(v.lines, 13);
    rmSync(join(t.dir, 'rot', files.find((f) => f !== 'audit.jsonl' && f !== files[0])!));
    assert.equal(verifyAudit(path).ok, false);
  });

  it('a line torn by a crash is cut off when the log is opened again, and the chain goes on', async () => {
    const path = join(t.dir, 'torn.jsonl');
    copyFileSync(base, path);
    writeFileSync(path, readFileSync(path, 'utf8') + '{"seq":7,"time":"2026-', { flag: 'w' });
    const msgs: string[] = [];
    const log = AuditLog.open(path, { log: (m) => msgs.push(m) });
    await log.append({ event: 'issue', serial: '7', device: 'dev-7', by: 'bootstrap:1' });
    await log.close();
    assert.match(msgs.join('\n'), /cut off a last line torn by a crash \(22 bytes\)/);
    assert.deepEqual(verifyAudit(path), { ok: true, lines: 7, files: [path] });
  });
});
