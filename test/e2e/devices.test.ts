import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { connect as netConnect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { toPem } from '../../src/asn1/pem.js';
import { certificateResponse } from '../../src/protocol/messages.js';
import { BIN, FIXTURE, liteboot, openssl, tempDir } from '../helpers/run.js';
import { curl, httpsRequest, identity, startServer, tlsFiles, type TestServer } from '../helpers/server.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  assert.equal(await s.stop(), 0, 'exit 0 after SIGTERM');
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

  test('--count 50 --json enrols 50 devices and the summary lists them', async () => {
    const r = lb(['new-device', 'localhost', '--count', '50', '--concurrency', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { requested: number; enrolled: number; failed: number; devices: { uuid: string; serial: string; certificate: string; key: string }[] };
    assert.equal(summary.requested, 50);
    assert.equal(summary.enrolled, 50);
    assert.equal(summary.failed, 0);
    assert.equal(summary.devices.length, 50);
    assert.equal(new Set(summary.devices.map((d) => d.serial)).size, 50);
    assert.equal(new Set(summary.devices.map((d) => d.uuid)).size, 50);
    // every one: openssl verifies all 50 files in one run...
    const v = openssl(['verify', '-CAfile', certs('CA.crt'), ...summary.devices.map((d) => d.certificate)]);
    assert.equal(v.stdout, summary.devices.map((d) => `${d.certificate}: OK\n`).join(''), v.stderr);
    const bootstrap = tlsFiles(s.dir, identity(s.dir, 'BOOTSTRAP'));
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      await Promise.all(summary.devices.map(async (d) => {
        // ...and each file holds the certificate of that serial and subject, for the key beside it
        assert.equal(d.certificate, certs(`${d.uuid}.crt`));
        assert.equal(d.key, certs(`${d.uuid}.key`));
        const x = new X509Certificate(readFileSync(d.certificate));
        assert.equal(BigInt('0x' + x.serialNumber).toString(), d.serial);
        assert.equal(x.subject, `O=Test Vendor\nCN=${d.uuid}\nOU=Signing`);
        assert.ok(x.checkPrivateKey(createPrivateKey(readFileSync(d.key))), `${d.uuid}: the key matches`);
        assert.equal(statSync(d.key).mode & 0o777, 0o600);
        // and the server has it recorded, valid, for that device
        const cs = await httpsRequest(s, bootstrap, 'GET', `/api/v1/cs/${d.serial}`, { agent });
        assert.equal(cs.body.toString(), '{"Status":1}\n');
        const ds = await httpsRequest(s, bootstrap, 'GET', `/api/v1/ds/${d.uuid}`, { agent });
        assert.equal(ds.body.toString(), `{"Status":1,"Serials":[${d.serial}]}\n`);
      }));
    } finally {
      agent.destroy();
    }
  });

  test('without --json on a pipe: plain progress lines and a summary', () => {
    const r = lb(['new-device', 'localhost', '--count', '10']);
    assert.equal(r.code, 0, r.stderr);
    // a line per tenth on a pipe (no bar, no carriage returns)
    assert.deepEqual(r.stderr.split('\n').slice(0, -1).map((l) => l.replace(/ \(\d+\/s\)$/, '')), Array.from({ length: 10 }, (_, i) => `enrolled ${i + 1}/10`));
    assert.match(r.stdout, new RegExp(`^enrolled 10 of 10 devices in \\d+\\.\\d s \\(\\d+/s\\) into ${certs('').replace(/\/$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n$`));
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

  test('transient failures are retried: connections reset before TLS are retried until every device enrols', async () => {
    // A TCP relay in front of the server resets the first three connections (one per device's
    // first attempt), then relays: each device must retry to enrol.
    let resets = 0;
    let relayed = 0;
    const relay = createServer((c) => {
      if (resets < 3) {
        resets++;
        c.resetAndDestroy();
        return;
      }
      relayed++;
      const up = netConnect(s.port, '127.0.0.1');
      up.on('error', () => c.destroy());
      c.on('error', () => up.destroy());
      c.pipe(up).pipe(c);
    });
    const port = await new Promise<number>((resolve) => relay.listen(0, '127.0.0.1', () => resolve((relay.address() as { port: number }).port)));
    try {
      const child = spawn(process.execPath, [BIN, 'new-device', 'localhost', '--port', String(port), '--count', '3', '--json'], { cwd: s.dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('close', r));
      assert.equal(code, 0, out + err);
      const summary = JSON.parse(out) as { enrolled: number; failed: number; devices: { uuid: string; serial: string }[] };
      assert.equal(summary.enrolled, 3);
      assert.equal(summary.failed, 0);
      assert.equal(resets, 3, 'three connections were reset');
      assert.ok(relayed >= 3, `${relayed} connections relayed`);
      for (const d of summary.devices) assert.equal(curl(s, identity(s.dir, 'BOOTSTRAP'), `/api/v1/cs/${d.serial}`).body.toString(), '{"Status":1}\n');
    } finally {
      await new Promise((r) => relay.close(r));
    }
  });
});

describe('the other calls as commands', () => {
  test('device status, cert status, cert get, cloud settings, device rekey, cert revoke', () => {
    const r = lb(['new-device', 'localhost']);
    const [, uuid, serial] = /enrolled ([0-9a-f-]{36}) \(serial (\d+)\)/.exec(r.stdout)!;
    assert.equal(lb(['device', 'status', uuid!]).stdout, `${uuid}: 1 valid certificate: ${serial}\n`);
    // the CLI's JSON: camelCase, serials as decimal strings (the server's own JSON is tested below)
    assert.deepEqual(JSON.parse(lb(['device', 'status', uuid!.toUpperCase(), '--json']).stdout), { device: uuid, serials: [serial] });
    const cs = lb(['cert', 'status', serial!]);
    assert.equal(cs.code, 0);
    assert.equal(cs.stdout, `${serial}: valid\n`);
    const got = lb(['cert', 'get', serial!, '-o', join(s.dir, 'copy.crt')]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(readFileSync(join(s.dir, 'copy.crt'), 'utf8'), readFileSync(certs(`${uuid}.crt`), 'utf8'));
    assert.deepEqual(JSON.parse(lb(['cloud', 'settings', '--json']).stdout), { hubname: 'test-hub', port: 8883 });

    const rekey = lb(['device', 'rekey', uuid!]);
    assert.equal(rekey.code, 0, rekey.stderr);
    assert.ok(existsSync(certs(`${uuid}.${serial}.crt`)) && existsSync(certs(`${uuid}.${serial}.key`)), 'the old pair is kept');
    checkDevice(uuid!);
    const newSerial = BigInt('0x' + openssl(['x509', '-in', certs(`${uuid}.crt`), '-noout', '-serial']).stdout.trim().slice(7)).toString();
    assert.deepEqual(JSON.parse(lb(['device', 'status', uuid!, '--json']).stdout), { device: uuid, serials: [serial, newSerial] });

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
    // its connection is closed right after the handshake (API.md "Who may call what")
    assert.match(denied.stderr, /^liteboot: the connection to localhost:\d+ was closed by the server \((?:ECONNRESET|EPIPE|socket hang up)\)\n$/);
  });

  test('usage mistakes exit 2', () => {
    const cases: [string[], string][] = [
      [['cert', 'status', 'abc'], 'liteboot: "abc" is not a decimal certificate serial\n'],
      [['cert', 'revoke', '1'], 'liteboot: say who revokes: --operator NAME or --device UUID\n'],
      [['device', 'status', 'not-a-uuid'], 'liteboot: "not-a-uuid" is not a UUID\n'],
    ];
    for (const [args, message] of cases) {
      const r = lb(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });
});

describe('decode-cbor', () => {
  const C = ['-H', 'Content-Type: application/cbor'];
  const decode = (file: string, kind: string) => liteboot(['decode-cbor', '-i', file, '-r', kind], { cwd: s.dir });
  const u64 = (n: string) => BigInt(n).toString(16).padStart(16, '0');

  test('every response kind: the server sends the bytes API.md gives, and decode-cbor prints the JSON API.md gives', () => {
    const r = lb(['new-device', 'localhost']);
    const [, uuid, serial] = /enrolled ([0-9a-f-]{36}) \(serial (\d+)\)/.exec(r.stdout)!;
    const pem = readFileSync(certs(`${uuid}.crt`), 'utf8'); // the certificate the device received
    assert.match(pem, /^-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/);
    const pemHead = `79${Buffer.byteLength(pem).toString(16).padStart(4, '0')}`;
    const hub = Buffer.from('test-hub').toString('hex');
    const b = identity(s.dir, 'BOOTSTRAP');
    const cases: [string, string, string, string][] = [
      ['cs', `/api/v1/cs/${serial}`, 'a10101', '{"Status":1}\n'],
      ['ds', `/api/v1/ds/${uuid}`, `a2010102811b${u64(serial!)}`, `{"Status":1,"Serials":[${serial}]}\n`],
      ['cc', `/api/v1/cc/${serial}`, `a2010002${pemHead}${Buffer.from(pem).toString('hex')}`, `{"Status":0,"Cert":${JSON.stringify(pem)}}\n`],
      ['ccs', '/api/v1/ccs', `a20168${hub}021922b3`, '{"Hubname":"test-hub","Port":8883}\n'],
    ];
    for (const [kind, path, cborHex, json] of cases) {
      const cbor = curl(s, b, path, C).body;
      assert.equal(cbor.toString('hex'), cborHex, kind);
      assert.equal(curl(s, b, path).body.toString(), json, `${kind}: the server's JSON`);
      const f = join(s.dir, `${kind}.cbor`);
      writeFileSync(f, cbor);
      assert.equal(decode(f, kind).stdout, json, kind);
      assert.equal(decode(f, 'auto').stdout, json, `${kind} (auto)`);
      if (kind === 'cc') assert.equal(liteboot(['decode-cbor', '-i', '-', '-r', kind], { cwd: s.dir, input: cbor }).stdout, json, `${kind} from stdin`);
    }
  });

  test('the Go server\'s /cr bodies (fixture .rsp): the certificate decode-cbor prints is the DER at offset 7, which openssl reads; our server and encoder give the same bytes', async () => {
    const rsps = readdirSync(join(FIXTURE, 'devices')).filter((n) => n.endsWith('.rsp')).sort();
    assert.equal(rsps.length, 4);
    const served = await startServer({ prepare: (dir) => copyFileSync(join(FIXTURE, 'CADB.db'), join(dir, 'CADB.db')) });
    try {
      for (const name of rsps) {
        const uuid = name.slice(0, -4);
        const file = join(FIXTURE, 'devices', name);
        const body = readFileSync(file);
        // {1: 0, 2: h'<DER>'}: a2 (map of 2), 01 00 (key 1: 0), 02 59 LLLL (key 2: a byte string of LLLL bytes)
        assert.equal(body.subarray(0, 5).toString('hex'), 'a201000259', name);
        assert.equal(body.readUInt16BE(5), body.length - 7, name);
        const der = body.subarray(7);
        // openssl reads those bytes as one certificate, for that device, and writes them back unchanged
        const derFile = join(s.dir, `${uuid}.der`);
        writeFileSync(derFile, der);
        const o = openssl(['x509', '-inform', 'DER', '-in', derFile, '-outform', 'DER']);
        assert.equal(o.code, 0, o.stderr);
        assert.ok(o.out.equals(der), `${name}: openssl re-encodes the same DER`);
        assert.match(openssl(['x509', '-inform', 'DER', '-in', derFile, '-noout', '-subject']).stdout, new RegExp(`CN = ${uuid}\\n$`));
        const serial = BigInt('0x' + openssl(['x509', '-inform', 'DER', '-in', derFile, '-noout', '-serial']).stdout.trim().slice(7)).toString();

        // decode-cbor prints exactly those bytes, in base64
        const out = decode(file, 'csr');
        assert.equal(out.code, 0, out.stderr);
        const m = /^\{"Status":0,"Cert":"([A-Za-z0-9+/]*={0,2})"\}\n$/.exec(out.stdout);
        assert.ok(m, out.stdout);
        assert.ok(Buffer.from(m[1]!, 'base64').equals(der), `${name}: decode-cbor's certificate is the DER at offset 7`);
        if (name === rsps[0]) assert.equal(decode(file, 'auto').stdout, out.stdout); // auto: once here, every kind above

        // our /cr encoder gives the Go server's bytes, every one
        assert.ok(certificateResponse('cbor', der).equals(body), `${name}: certificateResponse is byte for byte the Go body`);

        // and our server, serving the Go database, sends the same certificate in /cc: the same map
        // head and key 1 (a2 01 00 02), then the PEM as a text string (79 LLLL) as API.md says
        const b = identity(served.dir, 'BOOTSTRAP');
        const cs = curl(served, b, `/api/v1/cs/${serial}`, C).body.toString('hex');
        if (cs === 'a10100') continue; // the revoked one: /cc treats it as unknown
        assert.equal(cs, 'a10101', name);
        const cc = curl(served, b, `/api/v1/cc/${serial}`, C).body;
        assert.equal(cc.subarray(0, 4).toString('hex'), body.subarray(0, 4).toString('hex'), name);
        assert.equal(cc[4], 0x79);
        assert.equal(cc.readUInt16BE(5), cc.length - 7);
        const pem = cc.subarray(7).toString('latin1');
        assert.equal(pem, toPem('CERTIFICATE', der));
        const pemFile = join(s.dir, `${uuid}.pem`);
        writeFileSync(pemFile, pem);
        const back = openssl(['x509', '-in', pemFile, '-outform', 'DER']);
        assert.ok(back.out.equals(der), `${name}: the served PEM is the Go certificate`);
      }
    } finally {
      assert.equal(await served.stop(), 0);
      served.cleanup();
    }
  });

  test('a body of another kind, or not CBOR at all, is a clear error', () => {
    const rsp = join(FIXTURE, 'devices', readdirSync(join(FIXTURE, 'devices')).find((n) => n.endsWith('.rsp'))!);
    const wrong = decode(rsp, 'ds');
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stdout, '');
    assert.match(wrong.stderr, new RegExp(`^liteboot: ${rsp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a ds response: expected \\{1: uint, 2: \\[uint\\.\\.\\.\\] or null\\}, found a map with keys 1, 2 \\(the integer 0, a byte string \\(${readFileSync(rsp).length - 7} bytes\\)\\)\n$`));
    const junk = join(s.dir, 'junk.cbor');
    writeFileSync(junk, Buffer.from([0xa2, 0x01]));
    const bad = decode(junk, 'cs');
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, '');
    assert.equal(bad.stderr, `liteboot: ${junk}: the body is not well-formed CBOR (truncated, or bytes after the item)\n`);
    const nope = decode(junk, 'nope');
    assert.equal(nope.code, 2);
    assert.equal(nope.stdout, '');
    assert.match(nope.stderr, /-r must be one of cc, cs, ds, csr, ccs, auto, not "nope"/);
  });
});
