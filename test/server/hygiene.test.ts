import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, readdirSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { bitString, contextConstructed, oid, sequence, set, TAG, tlv } from '../../src/asn1/der.js';
import { generateKey, privateKeyToPem, spkiDer } from '../../src/asn1/keys.js';
import { dn } from '../../src/asn1/name.js';
import { OID } from '../../src/asn1/oids.js';
import { toPem } from '../../src/asn1/pem.js';
import { algorithmDer, keySigner } from '../../src/asn1/signer.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { bootstrapCertificate, DAY_MS, deviceCertificate } from '../../src/ca/profiles.js';
import { randomSerial } from '../../src/ca/serial.js';
import { loadServerConfig } from '../../src/config.js';
import { streamLogger } from '../../src/log.js';
import { startServer as startInProcess } from '../../src/server/app.js';
import { BIN, FIXTURE, openssl, tempDir } from '../helpers/run.js';
import { curl, identity, makeCaDir, startServer, type TestServer } from '../helpers/server.js';

const UUID = () => randomUUID();
const ago = () => new Date(Date.now() - 60_000);

/** A CSR signed by `key` with the given subject RDNs and SubjectPublicKeyInfo, byte for byte. */
async function rawCsr(rdns: Buffer[], spki?: Buffer): Promise<Buffer> {
  const key = generateKey();
  const signer = keySigner(key);
  const info = sequence(tlv(TAG.INTEGER, Buffer.from([0])), sequence(...rdns), spki ?? spkiDer(key), contextConstructed(0));
  return sequence(info, algorithmDer(signer.algorithm), bitString(await signer.sign(info)));
}
const utf8 = (type: string, s: string) => set(sequence(oid(type), tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'))));

/** POST /api/v1/cr with a JSON body, as the bootstrap credential. */
function enrol(s: { dir: string; port: number }, der: Buffer): { status: number; error?: string; body: string } {
  const f = join(s.dir, `body-${randomUUID()}.json`);
  writeFileSync(f, JSON.stringify({ CSR: der.toString('base64') }));
  const r = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', ['-H', 'Content-Type: application/json', '--data-binary', `@${f}`]);
  const body = r.body.toString('utf8');
  let error: string | undefined;
  try {
    error = (JSON.parse(body) as { error?: string }).error;
  } catch {
    /* a certificate, not an error */
  }
  return { status: r.status, error, body };
}

/** An openssl-made CSR (DER) for `subj`; `extra` adds e.g. -multivalue-rdn. */
function opensslCsr(dir: string, subj: string, extra: string[] = []): Buffer {
  const keyFile = join(dir, `k-${randomUUID()}.pem`);
  writeFileSync(keyFile, privateKeyToPem(generateKey()), { mode: 0o600 });
  const r = openssl(['req', '-new', '-key', keyFile, '-utf8', '-subj', subj, ...extra, '-outform', 'DER']);
  assert.equal(r.code, 0, r.stderr);
  return r.out;
}

/** Resolves with the first stderr line matching `re` (now or later). */
function logLine(s: TestServer, re: RegExp): Promise<string> {
  return new Promise((resolve) => {
    const check = () => {
      const l = s.stderr().split('\n').find((x) => re.test(x));
      if (l !== undefined) {
        s.child.stderr!.off('data', check);
        resolve(l);
      }
    };
    s.child.stderr!.on('data', check);
    check();
  });
}

const FORGED = '2026-12-01T00:00:00.000Z INFO forged line';

describe('subject hygiene and log escaping against the real server', () => {
  let s: TestServer;
  let caSubject: string;
  before(async () => {
    s = await startServer({
      toml: 'require_uuid = false',
      prepare: async (dir) => {
        const certs = new CertsDir(join(dir, 'certs'));
        const ca = certs.loadCa();
        // A second bootstrap credential without the reserved OU: its name is reserved too.
        const k = generateKey();
        const der = await deviceCertificate(ca.issuer, { subject: dn({ O: 'Factory', CN: 'line-7' }), serial: randomSerial(), publicKey: spkiDer(k), notBefore: ago(), days: 30 });
        writeFileSync(certs.path('BOOTSTRAP-factory.crt'), toPem('CERTIFICATE', der));
        // A client certificate whose CN carries CR LF and a fake log line (signed directly: the
        // policy would never issue it), for the log test.
        const w = generateKey();
        const wder = await deviceCertificate(ca.issuer, { subject: dn({ O: 'Test Vendor', CN: `evil\r\n${FORGED}` }), serial: randomSerial(), publicKey: spkiDer(w), notBefore: ago(), days: 30 });
        writeFileSync(certs.path('WEIRD.crt'), toPem('CERTIFICATE', wder));
        writeFileSync(certs.path('WEIRD.key'), privateKeyToPem(w), { mode: 0o600 });
      },
    });
    caSubject = new CertsDir(join(s.dir, 'certs')).loadCa().cert.cert.subject.find((a) => a.type === OID.commonName)!.value;
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  test('a normal CSR is still accepted (require_uuid = false)', () => {
    const r = enrol(s, opensslCsr(s.dir, `/O=Test Vendor/OU=Signing/CN=${UUID()}`));
    assert.equal(r.status, 200, r.body);
  });

  const refused: [string, () => Promise<Buffer> | Buffer, RegExp][] = [
    ['openssl: a zero-width space in the OU', () => opensslCsr(s.dir, `/O=Test Vendor/OU=Sign\u200bing/CN=${UUID()}`), /the subject's OU "Sign<U\+200B>ing" contains U\+200B/],
    ['openssl: the operator OU in fullwidth letters', () => opensslCsr(s.dir, `/O=Test Vendor/OU=ＬｉｎａｒｏＣＡ Ｏｐｅｒａｔｏｒ Ｃｅｒｔ/CN=${UUID()}`), /may not claim the OU/],
    ["openssl -multivalue-rdn: the CA's own subject", () => opensslCsr(s.dir, `/O=Linaro, LTD+CN=${caSubject}`, ['-multivalue-rdn']), /is the CA certificate's subject/],
    ["openssl: the server's subject", () => opensslCsr(s.dir, '/O=Linaro, LTD/CN=localhost'), /is the server certificate's subject/],
    ['openssl: the subject of certs/BOOTSTRAP-factory.crt', () => opensslCsr(s.dir, '/O=Factory/CN=line-7'), /is a bootstrap credential's subject/],
    ['DER: the operator OU followed by NUL', () => rawCsr([utf8(OID.organizationalUnitName, 'LinaroCA Operator Cert\0'), utf8(OID.commonName, UUID())]), /OU "LinaroCA Operator Cert<U\+0000>" contains U\+0000, a control character/],
    ['DER: CR LF and a forged log line in the O', () => rawCsr([utf8(OID.organizationName, `x\r\n${FORGED}`), utf8(OID.commonName, UUID())]), /contains U\+000D, a control character/],
  ];
  for (const [name, make, message] of refused) {
    test(`refused 400 BAD_SUBJECT: ${name}`, async () => {
      const r = enrol(s, await make());
      assert.equal(r.status, 400, r.body);
      assert.match(r.error ?? '', message);
      assert.doesNotMatch(r.error ?? '', /[\p{Cc}\p{Cf}]/u);
      assert.match(await logLine(s, new RegExp(`POST /api/v1/cr 400 .* code=BAD_SUBJECT`)), /code=BAD_SUBJECT/);
    });
  }

  test('a certificate subject with CR LF makes one log line, on the API and on the mTLS listener', async () => {
    const weird = identity(s.dir, 'WEIRD');
    const r = curl(s, weird, '/');
    assert.equal(r.status, 200, r.stderr);
    const api = await logLine(s, /GET \/ 200 .*by=unknown:evil/);
    assert.match(api, /by=unknown:evil\\r\\n2026-12-01T00:00:00\.000Z INFO forged line$/);
    const o = openssl(['s_client', '-connect', `127.0.0.1:${s.mport}`, '-cert', weird.cert, '-key', weird.key, '-CAfile', join(s.dir, 'certs', 'CA.crt')], { input: '' });
    assert.equal(o.code, 0, o.stderr);
    const mtls = await logLine(s, /mtls: connection accepted .*evil/);
    assert.match(mtls, /CN=evil\\r\\n2026-12-01T00:00:00\.000Z INFO forged line,O=Test Vendor/);
    // What a line-oriented reader of the log sees: no line starts with the forged text.
    assert.deepEqual(s.stderr().split('\n').filter((l) => l.includes('INFO forged line') && !/by=unknown:evil|mtls: connection accepted/.test(l)), []);
    assert.equal(s.stderr().split(/\r|\n/).filter((l) => l.startsWith(FORGED)).length, 0);
  });

  const garbage: [string, Buffer][] = [
    // rsaEncryption with a key that is not an RSAPublicKey: OpenSSL says "decode error".
    ['an RSA key that is not DER', sequence(sequence(oid('1.2.840.113549.1.1.1'), Buffer.from([0x05, 0x00])), bitString(randomBytes(40)))],
    // id-ecPublicKey on P-256 with a point that is not on the curve.
    ['an EC point off the curve', sequence(sequence(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), bitString(Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)])))],
    ['an unknown algorithm', sequence(sequence(oid('1.3.6.1.4.1.99999.1')), bitString(randomBytes(32)))],
  ];
  for (const [name, spki] of garbage) {
    test(`a CSR whose public key is garbage (${name}) is 400 with our message, no OpenSSL text`, async () => {
      const r = enrol(s, await rawCsr([utf8(OID.commonName, UUID())], spki));
      assert.equal(r.status, 400, r.body);
      assert.equal(r.error, 'CSR refused: its public key does not parse');
      assert.doesNotMatch(r.body, /error:|routines|decode|asn1|openssl/i);
      await logLine(s, /POST \/api\/v1\/cr 400 .* code=BAD_CSR/);
      assert.doesNotMatch(s.stderr(), /error:[0-9A-F]{8}/);
    });
  }
});

describe('the logger', () => {
  // Node's HTTP parser answers 400 to a request line with CR, LF or any byte above 0x7e before a
  // handler sees it, so a path reaches the log only through code: check the logger itself.
  test('a path, a caller or a message with line breaks and invisible characters is one line', async () => {
    let text = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    });
    const log = streamLogger(sink, () => new Date('2026-12-01T12:00:00Z'));
    log.request({ method: 'GET', path: `/api/v1/ds/x\r\n${FORGED}`, status: 400, ms: 1, who: `unknown:a\nb\u2028c\u0085d\u200be\u202ef\0g\x7fh`, code: 'BAD_UUID' });
    log.error(`boom\n    at forged (x.js:1:1)\r\n${FORGED}`);
    log.flush();
    assert.equal(
      text,
      `2026-12-01T12:00:00.000Z GET /api/v1/ds/x\\r\\n${FORGED} 400 1.0ms by=unknown:a\\nb\\u2028c\\x85d\\u200be\\u202ef\\x00g\\x7fh code=BAD_UUID\n` +
        `2026-12-01T12:00:00.000Z ERROR boom\\n    at forged (x.js:1:1)\\r\\n${FORGED}\n`,
    );
  });
});

/** Runs the CLI with umask 000, as a careless shell would. */
function umask000(cwd: string, args: string[], timeout = 60_000) {
  return spawnSync('sh', ['-c', 'umask 000; exec "$0" "$@"', process.execPath, BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, CAHOSTNAME: '' }, timeout });
}
const mode = (p: string) => statSync(p).mode & 0o777;

describe('files under umask 000', () => {
  const t = tempDir('liteboot-umask-');
  after(t.cleanup);

  test('set-up writes certs/ 0700 and keys 0600; the database, journal, lock and backup are 0600', async () => {
    assert.equal(umask000(t.dir, ['setup-ca', 'localhost', '--san', '127.0.0.1']).status, 0);
    assert.equal(umask000(t.dir, ['setup-bootstrap']).status, 0);
    assert.equal(umask000(t.dir, ['operator', 'create', 'alice']).status, 0);
    const c = (f: string) => join(t.dir, 'certs', f);
    assert.equal(mode(join(t.dir, 'certs')), 0o700);
    for (const f of ['CA.key', 'SERVER.key', 'BOOTSTRAP.key', 'bootstrap_key.txt', 'OPERATOR-alice.key']) assert.equal(mode(c(f)).toString(8), '600', f);
    for (const f of ['CA.crt', 'SERVER.crt', 'BOOTSTRAP.crt', 'ca_crt.txt']) assert.equal(mode(c(f)).toString(8), '644', f);

    // The Go server's database (0644, an old schema): migrated, with a backup.
    copyFileSync(join(FIXTURE, 'CADB.db'), join(t.dir, 'CADB.db'));
    chmodSync(join(t.dir, 'CADB.db'), 0o644);
    const child = spawn('sh', ['-c', 'umask 000; exec "$0" "$@"', process.execPath, BIN, 'server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0'], {
      cwd: t.dir,
      env: { ...process.env, CAHOSTNAME: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | string | null>((r) => child.once('exit', (code, signal) => r(code ?? signal)));
    // The `listening` log line, not the `serving` line on stdout: serve() prints that before it
    // installs its SIGTERM handler, so a SIGTERM sent on seeing it can kill the server outright.
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (/INFO listening: api=/.test(err)) resolve();
      });
      void exited.then((code) => reject(new Error(`server exited with ${code}: ${err}`)));
    });
    try {
      const files = readdirSync(t.dir).filter((f) => f.startsWith('CADB.db'));
      assert.ok(files.includes('CADB.db.lock') && files.some((f) => f.includes('.lbj.')) && files.some((f) => f.includes('.bak-')), files.join(' '));
      for (const f of files) assert.equal(mode(join(t.dir, f)).toString(8), '600', f);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `${err}\n${out}`);
    for (const f of readdirSync(t.dir).filter((f) => f.startsWith('CADB.db'))) assert.equal(mode(join(t.dir, f)).toString(8), '600', f);
  });

  test('the server refuses to start with a CA or server key others can read, a linked CA key, or certs/ others can write', () => {
    const certs = join(t.dir, 'certs');
    const key = join(certs, 'CA.key');
    const refuse = (why: RegExp) => {
      // A server that does start (the check missing) is killed after 20 s and fails the test.
      const r = umask000(t.dir, ['server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0'], 20_000);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, why);
      assert.equal(r.stdout, '');
    };
    chmodSync(key, 0o644);
    refuse(new RegExp(`^liteboot: ${key} is open to group and others \\(mode 0644\\); run \`chmod 600 ${key}\`$`, 'm'));
    chmodSync(key, 0o640);
    refuse(/is open to group \(mode 0640\); run `chmod 600 /);
    chmodSync(key, 0o600);
    chmodSync(join(certs, 'SERVER.key'), 0o604);
    refuse(/SERVER\.key is open to others \(mode 0604\); run `chmod 600 .*SERVER\.key`$/m);
    chmodSync(join(certs, 'SERVER.key'), 0o600);
    renameSync(key, join(t.dir, 'CA.key.real'));
    symlinkSync(join(t.dir, 'CA.key.real'), key);
    refuse(/CA\.key is a symbolic link; .*run `cp --remove-destination/);
    unlinkSync(key);
    renameSync(join(t.dir, 'CA.key.real'), key);
    chmodSync(certs, 0o777);
    refuse(new RegExp(`^liteboot: ${certs} is writable by group and others \\(mode 0777\\), so anyone could replace CA\\.crt; run \`chmod go-w ${certs}\`$`, 'm'));
    chmodSync(certs, 0o700);
  });
});

describe('an expired CA', () => {
  test('answers 503 with a message and one log line, no stack', async () => {
    const t = tempDir('liteboot-expired-');
    try {
      await makeCaDir(t.dir);
      const certs = new CertsDir(join(t.dir, 'certs'));
      const ca = certs.loadCa();
      // A bootstrap credential that outlives its CA, as the original Go tool made them (in
      // test/fixtures its BOOTSTRAP.crt runs to 2036, its CA to 2027).
      const k = generateKey();
      const beyond = { ...ca.issuer, notAfter: new Date(ca.issuer.notAfter.getTime() + 400 * DAY_MS) };
      const der = await bootstrapCertificate(beyond, { serial: randomSerial(), publicKey: spkiDer(k), notBefore: ago(), days: 4100 });
      writeFileSync(certs.path('BOOTSTRAP.crt'), toPem('CERTIFICATE', der));
      writeFileSync(certs.path('BOOTSTRAP.key'), privateKeyToPem(k), { mode: 0o600 });
      const config = loadServerConfig({
        cwd: t.dir,
        home: t.dir,
        env: {},
        flags: { hostname: 'localhost', port: '0', mport: '0', listen: '127.0.0.1' },
        certsDir: certs.dir,
        dbPath: join(t.dir, 'CADB.db'),
      });
      const lines: string[] = [];
      const wrote: (() => void)[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          for (const w of wrote.splice(0)) w();
          cb();
        },
      });
      // The server's clock reads a day after the CA's end; TLS (OpenSSL's clock) still trusts it.
      const running = await startInProcess({ config, log: streamLogger(sink), version: 'test', clock: () => new Date(ca.issuer.notAfter.getTime() + DAY_MS) });
      try {
        const body = join(t.dir, 'csr.json');
        writeFileSync(body, JSON.stringify({ CSR: (await rawCsr([utf8(OID.commonName, UUID())])).toString('base64') }));
        const who = identity(t.dir, 'BOOTSTRAP');
        const r = await new Promise<{ status: string; body: string }>((resolve) => {
          execFile(
            'curl',
            ['-sS', '--cacert', join(certs.dir, 'CA.crt'), '--cert', who.cert, '--key', who.key, '--resolve', `localhost:${running.apiPort}:127.0.0.1`, '-H', 'Content-Type: application/json', '--data-binary', `@${body}`, '-w', '\n%{http_code}', `https://localhost:${running.apiPort}/api/v1/cr`],
            (_e, stdout) => {
              const i = stdout.lastIndexOf('\n');
              resolve({ status: stdout.slice(i + 1), body: stdout.slice(0, i) });
            },
          );
        });
        assert.equal(r.status, '503', r.body);
        assert.deepEqual(JSON.parse(r.body), { error: 'service unavailable: the CA certificate has expired, so no certificate can be issued; ask the operator to renew the CA' });
        while (!lines.some((l) => l.includes('/api/v1/cr'))) await new Promise<void>((w) => wrote.push(w));
        const about = lines.filter((l) => /CA_EXPIRED|expired|\/api\/v1\/cr/.test(l));
        assert.equal(about.length, 1, about.join('\n'));
        assert.match(about[0]!, /POST \/api\/v1\/cr 503 [\d.]+ms by=bootstrap:\d+ code=CA_EXPIRED$/);
        assert.doesNotMatch(lines.join('\n'), /\bat .*\.js:\d+|ERROR/);
      } finally {
        await running.stop();
      }
    } finally {
      t.cleanup();
    }
  });
});

