import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildCrl, encodeCrlEntry } from '../../src/asn1/crl.js';
import { toPem } from '../../src/asn1/pem.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { BIN, FIXTURE, liteboot, openssl, run, tempDir } from '../helpers/run.js';

const tmp = tempDir();
after(tmp.cleanup);
const cwd = tmp.dir;
const certs = (f: string) => join(cwd, 'certs', f);

/** The subject (RFC 2253 form) and the SAN list of a certificate, as openssl reads them. */
function subjectAndSans(file: string): string {
  return openssl(['x509', '-in', file, '-noout', '-nameopt', 'RFC2253', '-subject', '-ext', 'subjectAltName']).stdout;
}

describe('setup-ca and setup-bootstrap in an empty directory', () => {
  let t0 = 0;
  let t1 = 0;
  before(() => {
    t0 = Date.now();
    const a = liteboot(['setup-ca', 'localhost', '--san', '127.0.0.1'], { cwd });
    t1 = Date.now();
    assert.equal(a.code, 0, a.stderr);
    const b = liteboot(['setup-bootstrap'], { cwd });
    assert.equal(b.code, 0, b.stderr);
  });

  test('writes every file the original wrote, keys 0600', () => {
    for (const f of ['CA.crt', 'CA.key', 'SERVER.crt', 'SERVER.key', 'ca_crt.txt', 'BOOTSTRAP.crt', 'BOOTSTRAP.key', 'bootstrap_crt.txt', 'bootstrap_key.txt']) {
      assert.ok(existsSync(certs(f)), f);
    }
    for (const f of ['CA.key', 'SERVER.key', 'BOOTSTRAP.key']) {
      assert.equal(statSync(certs(f)).mode & 0o777, 0o600, f);
      assert.match(readFileSync(certs(f), 'utf8'), /^-----BEGIN EC PRIVATE KEY-----\n/);
    }
  });

  test('openssl verify accepts SERVER and BOOTSTRAP', () => {
    const r = openssl(['verify', '-CAfile', certs('CA.crt'), certs('SERVER.crt'), certs('BOOTSTRAP.crt')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SERVER.crt: OK/);
    assert.match(r.stdout, /BOOTSTRAP.crt: OK/);
  });

  test('the CA subject is O=Linaro, LTD, CN=LRC - YYYYMMDDHHMMSS on a 24-hour clock (UTC, the time of set-up)', () => {
    const s = openssl(['x509', '-in', certs('CA.crt'), '-noout', '-subject', '-startdate']).stdout;
    const m = /^subject=O = "Linaro, LTD", CN = LRC - (\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)\n/m.exec(s);
    assert.ok(m, s);
    const at = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
    // the stamp is when setup-ca ran (to the second): a 12-hour clock or local time would miss this half the day
    assert.ok(at >= Math.floor(t0 / 1000) * 1000 && at <= t1, `CN time ${new Date(at).toISOString()} not within the run ${new Date(t0).toISOString()}..${new Date(t1).toISOString()}`);
    assert.equal(Date.parse(/^notBefore=(.*)$/m.exec(s)![1]!), at, 'the CA starts when its name says');
  });

  test('serials are random, positive and distinct (RFC 5280 §4.1.2.2; at least 64 bits of entropy)', () => {
    const serials = ['CA.crt', 'SERVER.crt', 'BOOTSTRAP.crt'].map((f) => BigInt('0x' + /^serial=([0-9A-F]+)$/m.exec(openssl(['x509', '-in', certs(f), '-noout', '-serial']).stdout)![1]!));
    assert.equal(new Set(serials).size, 3, serials.join(' '));
    // 127 random bits: each is below 2^63 with probability 2^-64, and fits in 20 octets
    for (const v of serials) assert.ok(v >= 2n ** 63n && v < 2n ** 159n, String(v));
  });

  test('the server certificate names the host, with the extra SAN', () => {
    assert.equal(subjectAndSans(certs('SERVER.crt')), 'subject=CN=localhost,O=Linaro\\, LTD\nX509v3 Subject Alternative Name: \n    DNS:localhost, IP Address:127.0.0.1\n');
  });

  test('ca_crt.txt and bootstrap_crt.txt compiled into C give back the PEM byte for byte', () => {
    const prog = join(cwd, 'pem.c');
    writeFileSync(prog, [
      '#include <stdio.h>',
      'static const char ca[] =',
      '#include "certs/ca_crt.txt"',
      ';',
      'static const char bs[] =',
      '#include "certs/bootstrap_crt.txt"',
      ';',
      'int main(int argc, char **argv) { fputs(argv[1][0] == \'c\' ? ca : bs, stdout); return 0; }',
    ].join('\n'));
    const exe = join(cwd, 'pem');
    const cc = run('gcc', ['-o', exe, prog], { cwd });
    assert.equal(cc.code, 0, cc.stderr);
    const crlf = (f: string) => readFileSync(certs(f), 'utf8').replace(/\n/g, '\r\n');
    assert.equal(run(exe, ['ca']).stdout, crlf('CA.crt'));
    assert.equal(run(exe, ['bs']).stdout, crlf('BOOTSTRAP.crt'));
  });

  test('bootstrap_key.txt compiled into C gives back what openssl ec -outform DER prints', () => {
    const prog = join(cwd, 'key.c');
    writeFileSync(prog, [
      '#include <stdio.h>',
      'static const unsigned char key[] = {',
      '#include "certs/bootstrap_key.txt"',
      '};',
      'int main(void) { fwrite(key, 1, sizeof key, stdout); return 0; }',
    ].join('\n'));
    const exe = join(cwd, 'key');
    assert.equal(run('gcc', ['-o', exe, prog], { cwd }).code, 0);
    const der = openssl(['ec', '-in', certs('BOOTSTRAP.key'), '-outform', 'DER']).out;
    assert.ok(der.length > 100);
    assert.deepEqual(run(exe, []).out, der);
    assert.deepEqual(readFileSync(certs('bootstrap_key.txt'), 'utf8'), run('xxd', ['-i'], { input: der }).stdout);
  });

  test('setup-ca refuses to overwrite, names the files, changes nothing', () => {
    const before = readFileSync(certs('CA.crt'));
    const r = liteboot(['setup-ca', 'localhost'], { cwd });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to overwrite .*CA\.crt/);
    assert.match(r.stderr, /rm /);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack');
    assert.deepEqual(readFileSync(certs('CA.crt')), before);
  });

  test('setup-ca refuses when only a database exists', () => {
    const other = tempDir();
    try {
      writeFileSync(join(other.dir, 'CADB.db'), 'x');
      const r = liteboot(['setup-ca', 'localhost'], { cwd: other.dir });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /CADB\.db/);
      assert.equal(existsSync(join(other.dir, 'certs', 'CA.crt')), false);
    } finally {
      other.cleanup();
    }
  });

  test('setup-bootstrap refuses to overwrite', () => {
    const r = liteboot(['setup-bootstrap'], { cwd });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to overwrite .*BOOTSTRAP/);
  });

  test('cakey getpub prints the CA public key as openssl derives it', () => {
    const r = liteboot(['cakey', 'getpub', '--der', join(cwd, 'pub.der')], { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, openssl(['pkey', '-in', certs('CA.key'), '-pubout']).stdout);
    assert.deepEqual(readFileSync(join(cwd, 'pub.der')), openssl(['pkey', '-in', certs('CA.key'), '-pubout', '-outform', 'DER']).out);
  });

  test('operator create makes a clientAuth credential with the operator OU', () => {
    const r = liteboot(['operator', 'create', 'alice'], { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(openssl(['verify', '-CAfile', certs('CA.crt'), certs('OPERATOR-alice.crt')]).code, 0);
    assert.match(openssl(['x509', '-in', certs('OPERATOR-alice.crt'), '-noout', '-subject']).stdout, /CN = alice, OU = LinaroCA Operator Cert\n/);
    const purpose = openssl(['x509', '-in', certs('OPERATOR-alice.crt'), '-noout', '-purpose']).stdout;
    assert.match(purpose, /SSL client : Yes/);
    assert.match(purpose, /SSL server : No/);
    assert.equal(statSync(certs('OPERATOR-alice.key')).mode & 0o777, 0o600);
  });
});

describe('inspect', () => {
  test('describes a certificate, a key and a CSR; never prints key material', () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal(liteboot(['setup-ca', 'localhost'], { cwd: dir }).code, 0);
      const csr = join(dir, 'r.csr');
      assert.equal(openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', join(dir, 'r.key'), '-subj', '/CN=dev', '-out', csr]).code, 0);
      const r = liteboot(['inspect', 'certs/CA.crt', 'certs/CA.key', csr], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const serial = openssl(['x509', '-in', join(dir, 'certs/CA.crt'), '-noout', '-serial']).stdout.trim().slice(7).toLowerCase();
      assert.match(r.stdout, new RegExp(`Serial: +\\d+ \\(0x${serial.replace(/^0+/, '')}\\)`));
      assert.match(r.stdout, /keyUsage \(critical\): keyCertSign, cRLSign/);
      assert.match(r.stdout, /private key \(SEC1\)/);
      assert.match(r.stdout, /certificate request/);
      assert.match(r.stdout, /EC P-384/);
      const keyB64 = readFileSync(join(dir, 'certs/CA.key'), 'utf8').split('\n')[1]!;
      assert.ok(!r.stdout.includes(keyB64.slice(0, 20)));
      // nor the private scalar itself, in hex (with or without colons) or base64, as openssl reads it
      const ecText = openssl(['ec', '-in', join(dir, 'certs/CA.key'), '-noout', '-text']).stdout;
      const priv = Buffer.from(/priv:\s+([0-9a-f:\s]+?)\npub:/.exec(ecText)![1]!.replace(/[:\s]/g, ''), 'hex').subarray(-32);
      assert.equal(priv.length, 32);
      const flat = r.stdout.replace(/[:\s]/g, '').toLowerCase();
      assert.ok(!flat.includes(priv.toString('hex').slice(0, 16)), 'no private key hex');
      assert.ok(!r.stdout.includes(priv.toString('base64').slice(0, 16)), 'no private key base64');
      const fp = openssl(['x509', '-in', join(dir, 'certs/CA.crt'), '-noout', '-fingerprint', '-sha256']).stdout.trim().split('=')[1];
      assert.ok(r.stdout.includes(fp!), 'SHA-256 fingerprint as openssl prints it');

      const j = liteboot(['inspect', '--json', 'certs/SERVER.crt'], { cwd: dir });
      assert.equal(j.code, 0, j.stderr);
      const parsed = JSON.parse(j.stdout) as { objects: { kind: string; serial: string; extensions: { name: string; critical: boolean; value: string }[] }[] }[];
      assert.equal(parsed.length, 1);
      assert.equal(parsed[0]!.objects.length, 1);
      assert.equal(parsed[0]!.objects[0]!.kind, 'certificate');
      const serverSerial = BigInt('0x' + openssl(['x509', '-in', join(dir, 'certs/SERVER.crt'), '-noout', '-serial']).stdout.trim().slice(7));
      assert.equal(parsed[0]!.objects[0]!.serial, serverSerial.toString(), 'the serial as a decimal string');
      assert.deepEqual(parsed[0]!.objects[0]!.extensions.map((e) => `${e.name}${e.critical ? ' (critical)' : ''}`), [
        'basicConstraints (critical)', 'keyUsage (critical)', 'extendedKeyUsage', 'subjectAltName', 'subjectKeyIdentifier', 'authorityKeyIdentifier',
      ]);
      assert.equal(parsed[0]!.objects[0]!.extensions.find((e) => e.name === 'subjectAltName')?.value, 'DNS:localhost');

      const der = join(dir, 'ca.der');
      openssl(['x509', '-in', join(dir, 'certs/CA.crt'), '-outform', 'DER', '-out', der]);
      assert.match(liteboot(['inspect', der], { cwd: dir }).stdout, /certificate \(X\.509 v3\)/);
    } finally {
      cleanup();
    }
  });

  test('anything else gets one clear line and exit 1', () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'junk'), 'hello world');
      const r = liteboot(['inspect', 'junk', 'missing'], { cwd: dir });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /junk: not a certificate, CSR, key, CRL or CBOR response body/);
      assert.match(r.stderr, /^liteboot: cannot read missing: not found$/m);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    } finally {
      cleanup();
    }
  });
});

describe('inspect: CRLs and CBOR bodies', () => {
  test('a CRL liteboot builds is read by openssl and listed by inspect; a CBOR body is shown as the server\'s JSON', async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal(liteboot(['setup-ca', 'localhost'], { cwd: dir }).code, 0);
      const ca = new CertsDir(join(dir, 'certs')).loadCa();
      const der = await buildCrl(
        {
          issuerDer: ca.issuer.subjectDer,
          issuerKeyId: ca.issuer.keyId,
          thisUpdate: new Date('2030-01-01T00:00:00Z'),
          nextUpdate: new Date('2030-01-08T00:00:00Z'),
          number: 7n,
          entries: [encodeCrlEntry({ serial: 1795721654822870144n, revokedAt: new Date('2030-01-01T00:00:00Z'), reason: 1 }), encodeCrlEntry({ serial: 5n, revokedAt: new Date('2029-12-31T00:00:00Z') })],
        },
        ca.issuer.signer,
      );
      const crl = join(dir, 'ca.crl');
      writeFileSync(crl, toPem('X509 CRL', der));
      const o = openssl(['crl', '-in', crl, '-noout', '-text', '-CAfile', join(dir, 'certs/CA.crt')]);
      assert.equal(o.code, 0, o.stderr);
      assert.match(o.stderr + o.stdout, /verify OK/);
      assert.match(o.stdout, /Serial Number: 18EBAF54B7319C80\s+Revocation Date: Jan  1 00:00:00 2030 GMT\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Key Compromise/);
      assert.match(o.stdout, /X509v3 CRL Number:\s+7/);
      const r = liteboot(['inspect', 'ca.crl'], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /certificate revocation list/);
      assert.match(r.stdout, /Revoked: +2 certificates/);
      assert.match(r.stdout, /1795721654822870144  2030-01-01T00:00:00.000Z/);
      const rsp = join(FIXTURE, 'devices', '23d80612-09d7-4181-9b14-24c1173f7028.rsp');
      const c = liteboot(['inspect', rsp], { cwd: dir });
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /CBOR csr response body/);
      assert.match(c.stdout, /\{"Status":0,"Cert":"MII/);
    } finally {
      cleanup();
    }
  });
});

describe('usage', () => {
  test('errors are one line, usage mistakes exit 2, --help has examples', () => {
    const { dir, cleanup } = tempDir();
    try {
      const noCa = liteboot(['setup-bootstrap'], { cwd: dir });
      assert.equal(noCa.code, 1);
      assert.match(noCa.stderr, /CA certificate not found .*run `liteboot setup-ca` first/);
      assert.equal(noCa.stderr.trim().split('\n').length, 1);
      assert.equal(liteboot(['setup-ca', '--days', 'ten'], { cwd: dir }).code, 2);
      assert.equal(liteboot(['setup-ca', 'bad host!'], { cwd: dir }).code, 2);
      assert.equal(liteboot(['no-such-command'], { cwd: dir }).code, 2);
      const help = liteboot(['setup-ca', '--help'], { cwd: dir });
      assert.equal(help.code, 0);
      assert.match(help.stdout, /\nExamples\n/);
      assert.match(help.stdout, /\$ liteboot setup-ca localhost/);
      assert.equal(existsSync(join(dir, 'certs')), false, 'failed commands wrote nothing');
    } finally {
      cleanup();
    }
  });

  test('hostname: argument, then $CAHOSTNAME, then the system host name', (t) => {
    const made = (env: NodeJS.ProcessEnv, args: string[] = []) => {
      const { dir, cleanup } = tempDir();
      try {
        const r = liteboot(['setup-ca', ...args], { cwd: dir, env });
        assert.equal(r.code, 0, r.stderr);
        return subjectAndSans(join(dir, 'certs/SERVER.crt'));
      } finally {
        cleanup();
      }
    };
    const names = (host: string) => `subject=CN=${host},O=Linaro\\, LTD\nX509v3 Subject Alternative Name: \n    DNS:${host}\n`;
    // 1. the argument wins over $CAHOSTNAME
    assert.equal(made({ CAHOSTNAME: 'from-env.example' }, ['from-arg.example']), names('from-arg.example'));
    // 2. without an argument, $CAHOSTNAME wins over the system host name
    assert.equal(made({ CAHOSTNAME: 'from-env.example' }), names('from-env.example'));
    // 3. with neither (an empty $CAHOSTNAME counts as unset), the system host name. Where this
    // process may make a UTS namespace (root, util-linux unshare), the host name is set there to a
    // fresh random name, which proves it is read from the system; otherwise it is compared with
    // os.hostname(), which proves less (skipped when that is "localhost", the built-in default).
    const fresh = `sys-${randomBytes(4).toString('hex')}.example`;
    const { dir, cleanup } = tempDir();
    try {
      const r = run('unshare', ['--uts', 'sh', '-c', 'hostname "$1" && exec "$2" "$3" setup-ca', 'sh', fresh, process.execPath, BIN], { cwd: dir, env: { ...process.env, CAHOSTNAME: '' }, encoding: 'utf8' });
      if (r.code === 0) {
        assert.equal(subjectAndSans(join(dir, 'certs/SERVER.crt')), names(fresh));
        assert.notEqual(osHostname(), fresh, 'the test process kept its own host name');
        return;
      }
      t.diagnostic(`unshare --uts unavailable (${r.stderr.trim()}); comparing with os.hostname()`);
    } finally {
      cleanup();
    }
    if (osHostname() === 'localhost' || osHostname() === '') return t.skip('the system host name is "localhost", the built-in default');
    assert.equal(made({ CAHOSTNAME: '' }), names(osHostname()));
  });
});
