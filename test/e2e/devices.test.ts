import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, FIXTURE, liteboot, openssl, run, tempDir } from '../helpers/run.js';
import { curl, identity, spawnServer, startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  await s.stop();
  s.cleanup();
});

const lb = (args: string[]) => liteboot([...args, ...(args[0] === 'new-device' ? [] : ['--hostname', 'localhost']), '--port', String(s.port)], { cwd: s.dir });
const certs = (f: string) => join(s.dir, 'certs', f);

function checkDevice(uuid: string): void {
  const crt = certs(`${uuid}.crt`);
  const key = certs(`${uuid}.key`);
  const v = openssl(['verify', '-CAfile', certs('CA.crt'), crt]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.equal(openssl(['x509', '-in', crt, '-noout', '-pubkey']).stdout, openssl(['pkey', '-in', key, '-pubout']).stdout, 'the key matches');
  assert.equal(statSync(key).mode & 0o777, 0o600);
  assert.match(openssl(['x509', '-in', crt, '-noout', '-subject']).stdout, new RegExp(`O = Test Vendor, CN = ${uuid}, OU = Signing`));
}

describe('new-device', () => {
  for (const format of ['cbor', 'json', 'p10']) {
    test(`enrols in ${format}: a certificate openssl verifies, with its key`, () => {
      const r = lb(['new-device', 'localhost', '--format', format]);
      assert.equal(r.code, 0, r.stderr);
      const uuid = /enrolled ([0-9a-f-]{36}) \(serial (\d+)\)/.exec(r.stdout)![1]!;
      checkDevice(uuid);
    });
  }

  test('--count 50 --json enrols 50 devices and the summary lists them', () => {
    const r = lb(['new-device', 'localhost', '--count', '50', '--concurrency', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { requested: number; enrolled: number; failed: number; devices: { uuid: string; serial: string; certificate: string; key: string }[] };
    assert.equal(summary.requested, 50);
    assert.equal(summary.enrolled, 50);
    assert.equal(summary.failed, 0);
    assert.equal(new Set(summary.devices.map((d) => d.serial)).size, 50);
    for (const d of summary.devices.slice(0, 5)) {
      assert.ok(existsSync(d.certificate) && existsSync(d.key));
      checkDevice(d.uuid);
      assert.equal(curl(s, identity(s.dir, 'BOOTSTRAP'), `/api/v1/cs/${d.serial}`).body.toString(), '{"Status":1}\n');
    }
  });

  test('without --json on a pipe: plain progress lines and a summary', () => {
    const r = lb(['new-device', 'localhost', '--count', '10']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /enrolled 10\/10/);
    assert.match(r.stdout, /enrolled 10 of 10 devices/);
  });

  test('a stopped server, a wrong hostname and a wrong CA each give one clear line', async () => {
    const free = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const stopped = liteboot(['new-device', 'localhost', '--port', String(free)], { cwd: s.dir });
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /^liteboot: cannot connect to liteboot at localhost:\d+: connection refused/);
    const wrongName = lb(['new-device', '127.1']); // resolves to 127.0.0.1, which the certificate names only as an address
    assert.equal(wrongName.code, 1);
    assert.match(wrongName.stderr, /^liteboot: the server at 127\.1:\d+ has a certificate for another name/);
    const other = tempDir();
    try {
      cpSync(join(s.dir, 'certs'), other.dir, { recursive: true });
      cpSync(join(FIXTURE, 'certs', 'CA.crt'), join(other.dir, 'CA.crt'));
      const wrongCa = lb(['new-device', 'localhost', '--certs', other.dir]);
      assert.equal(wrongCa.code, 1);
      assert.match(wrongCa.stderr, /^liteboot: the server at localhost:\d+ is not trusted/);
    } finally {
      other.cleanup();
    }
    for (const r of [stopped, wrongName]) {
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
    }
  });

  test('transient failures are retried: devices enrol once the server comes up', async () => {
    const t = tempDir();
    cpSync(s.dir, t.dir, { recursive: true, filter: (src) => !/CADB\.db|devices|curl-|body-/.test(src) });
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const child = spawn(process.execPath, [BIN, 'new-device', 'localhost', '--port', String(port), '--count', '3', '--json'], { cwd: t.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<number | null>((r) => child.once('exit', r));
    await new Promise((r) => setTimeout(r, 700));
    const late = await spawnServer(t.dir, () => {}, ['-p', String(port)]);
    try {
      assert.equal(await done, 0, out);
      assert.equal((JSON.parse(out) as { enrolled: number }).enrolled, 3);
    } finally {
      await late.stop();
      t.cleanup();
    }
  });
});

describe('the other calls as commands', () => {
  test('device status, cert status, cert get, cloud settings, device rekey, cert revoke', () => {
    const r = lb(['new-device', 'localhost']);
    const [, uuid, serial] = /enrolled ([0-9a-f-]{36}) \(serial (\d+)\)/.exec(r.stdout)!;
    assert.equal(lb(['device', 'status', uuid!]).stdout, `${uuid}: 1 valid certificate: ${serial}\n`);
    assert.equal(lb(['device', 'status', uuid!.toUpperCase(), '--json']).stdout, `{"Status":1,"Serials":[${serial}]}\n`);
    const cs = lb(['cert', 'status', serial!]);
    assert.equal(cs.code, 0);
    assert.equal(cs.stdout, `${serial}: valid\n`);
    const got = lb(['cert', 'get', serial!, '-o', join(s.dir, 'copy.crt')]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(readFileSync(join(s.dir, 'copy.crt'), 'utf8'), readFileSync(certs(`${uuid}.crt`), 'utf8'));
    assert.equal(lb(['cloud', 'settings', '--json']).stdout, '{"Hubname":"test-hub","Port":8883}\n');

    const rekey = lb(['device', 'rekey', uuid!]);
    assert.equal(rekey.code, 0, rekey.stderr);
    assert.ok(existsSync(certs(`${uuid}.${serial}.crt`)) && existsSync(certs(`${uuid}.${serial}.key`)), 'the old pair is kept');
    checkDevice(uuid!);
    const newSerial = BigInt('0x' + openssl(['x509', '-in', certs(`${uuid}.crt`), '-noout', '-serial']).stdout.trim().slice(7)).toString();
    assert.equal(lb(['device', 'status', uuid!, '--json']).stdout, `{"Status":1,"Serials":[${serial},${newSerial}]}\n`);

    // the device revokes its old certificate with its new one; an operator revokes the new one
    const own = lb(['cert', 'revoke', serial!, '--device', uuid!]);
    assert.equal(own.code, 0, own.stderr);
    const st = lb(['cert', 'status', serial!]);
    assert.equal(st.code, 3);
    assert.equal(st.stdout, `${serial}: revoked\n`);
    assert.equal(lb(['cert', 'revoke', newSerial, '--operator', 'alice', '--reason', '4', '--wire', 'json']).code, 0);
    assert.equal(lb(['device', 'status', uuid!]).stdout, `${uuid}: no valid certificates\n`);
    const denied = lb(['cert', 'revoke', newSerial, '--device', uuid!]);
    assert.equal(denied.code, 1, 'a revoked certificate can no longer call');
    assert.match(denied.stderr, /^liteboot: /);
  });

  test('usage mistakes exit 2', () => {
    assert.equal(lb(['cert', 'status', 'abc']).code, 2);
    assert.equal(lb(['cert', 'revoke', '1']).code, 2);
    assert.equal(lb(['device', 'status', 'not-a-uuid']).code, 2);
  });
});

describe('decode-cbor', () => {
  const C = ['-H', 'Content-Type: application/cbor'];
  const decode = (file: string, kind: string) => liteboot(['decode-cbor', '-i', file, '-r', kind], { cwd: s.dir });

  test('every response kind gives the server\'s JSON, byte for byte', () => {
    const r = lb(['new-device', 'localhost']);
    const [, uuid, serial] = /enrolled ([0-9a-f-]{36}) \(serial (\d+)\)/.exec(r.stdout)!;
    const b = identity(s.dir, 'BOOTSTRAP');
    for (const [kind, path] of [['cs', `/api/v1/cs/${serial}`], ['ds', `/api/v1/ds/${uuid}`], ['cc', `/api/v1/cc/${serial}`], ['ccs', '/api/v1/ccs']] as const) {
      const cbor = curl(s, b, path, C).body;
      const json = curl(s, b, path).body.toString();
      const f = join(s.dir, `${kind}.cbor`);
      writeFileSync(f, cbor);
      assert.equal(decode(f, kind).stdout, json, kind);
      assert.equal(decode(f, 'auto').stdout, json, `${kind} (auto)`);
      assert.equal(liteboot(['decode-cbor', '-i', '-', '-r', kind], { cwd: s.dir, input: cbor }).stdout, json, `${kind} from stdin`);
    }
  });

  test('the Go server\'s CBOR bodies decode as /cr responses with the certificate in base64', () => {
    for (const f of readdirSync(join(FIXTURE, 'devices')).filter((n) => n.endsWith('.rsp'))) {
      const body = readFileSync(join(FIXTURE, 'devices', f));
      const out = decode(join(FIXTURE, 'devices', f), 'csr');
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, `{"Status":0,"Cert":"${body.subarray(7).toString('base64')}"}\n`);
      assert.equal(decode(join(FIXTURE, 'devices', f), 'auto').stdout, out.stdout);
    }
  });

  test('a body of another kind, or not CBOR at all, is a clear error', () => {
    const rsp = join(FIXTURE, 'devices', readdirSync(join(FIXTURE, 'devices')).find((n) => n.endsWith('.rsp'))!);
    const wrong = decode(rsp, 'ds');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /not a ds response: expected \{1: uint, 2: \[uint\.\.\.\] or null\}, found a map with keys 1, 2 \(the integer 0, a byte string \(\d+ bytes\)\)/);
    const junk = join(s.dir, 'junk.cbor');
    writeFileSync(junk, Buffer.from([0xa2, 0x01]));
    assert.match(decode(junk, 'cs').stderr, /not well-formed CBOR/);
    assert.equal(decode(junk, 'nope').code, 2);
    assert.equal(run('true', []).code, 0);
  });
});
