import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseCertificate } from '../../src/asn1/certificate.js';
import { buildCsr, parseCsr } from '../../src/asn1/csr.js';
import { generateKey, spkiDer } from '../../src/asn1/keys.js';
import { dn } from '../../src/asn1/name.js';
import { toPem } from '../../src/asn1/pem.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { bootstrapCertificate, caCertificate, deviceCertificate, operatorCertificate, serverCertificate, type Issuer } from '../../src/ca/profiles.js';
import { keySigner } from '../../src/asn1/signer.js';
import { keyIdentifier } from '../../src/asn1/extensions.js';
import { FIXTURE, openssl, tempDir } from '../helpers/run.js';

const tmp = tempDir();
after(tmp.cleanup);

const now = new Date('2030-06-01T12:00:00Z');
const caKey = generateKey();
const caDer = await caCertificate({ subject: dn({ O: 'Linaro, LTD', CN: 'LRC - 20300601120000' }), serial: 77n, publicKey: spkiDer(caKey), notBefore: now, days: 3650, signer: keySigner(caKey) });
const ca = parseCertificate(caDer);
const issuer: Issuer = { subjectDer: ca.subjectDer, notAfter: ca.notAfter, keyId: keyIdentifier(spkiDer(caKey)), spki: spkiDer(caKey), signer: keySigner(caKey) };
const caFile = join(tmp.dir, 'CA.crt');
writeFileSync(caFile, toPem('CERTIFICATE', caDer));

function save(name: string, der: Buffer): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, toPem('CERTIFICATE', der));
  return f;
}

/** The "X509v3 extensions:" section of `openssl x509 -text`, without key-identifier hex. */
function extensionsText(file: string): string {
  const text = openssl(['x509', '-in', file, '-noout', '-text']).stdout;
  const section = text.slice(text.indexOf('X509v3 extensions:'), text.indexOf('Signature Algorithm:', text.indexOf('X509v3 extensions:')));
  return section.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => (/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/.test(l) ? '<keyid>' : l)).join('\n');
}

function verify(file: string): void {
  const r = openssl(['verify', '-attime', String(Math.floor(now.getTime() / 1000) + 60), '-CAfile', caFile, file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

const k = () => spkiDer(generateKey());

/** A key identifier extension's value as openssl prints it, without colons. */
function keyIdOf(file: string, ext: 'subjectKeyIdentifier' | 'authorityKeyIdentifier'): string {
  const out = openssl(['x509', '-in', file, '-noout', '-ext', ext]).stdout;
  const m = /([0-9A-F]{2}(?::[0-9A-F]{2}){19})/.exec(out);
  assert.ok(m, `${file}: no ${ext} in ${out}`);
  return m[1]!.replace(/:/g, '');
}

/**
 * RFC 5280 §4.2.1.2 method (1), computed from what openssl extracts: SHA-1 of the P-256 point,
 * the last 65 bytes of the 91-byte SubjectPublicKeyInfo.
 */
function expectedKeyId(file: string): string {
  const pem = openssl(['x509', '-in', file, '-noout', '-pubkey']).stdout;
  const spki = openssl(['pkey', '-pubin', '-outform', 'DER'], { input: pem }).out;
  assert.equal(spki.length, 91, 'a P-256 key');
  return createHash('sha1').update(spki.subarray(-65)).digest('hex').toUpperCase();
}

/** notAfter - notBefore in ms, as openssl reads the certificate. */
function lifetime(file: string): number {
  const out = openssl(['x509', '-in', file, '-noout', '-startdate', '-enddate']).stdout;
  return Date.parse(/^notAfter=(.*)$/m.exec(out)![1]!) - Date.parse(/^notBefore=(.*)$/m.exec(out)![1]!);
}

test('CA profile: v3, CA:TRUE and keyCertSign+cRLSign critical, SKI, no AKI', async () => {
  assert.equal(extensionsText(caFile), [
    'X509v3 extensions:',
    'X509v3 Basic Constraints: critical', 'CA:TRUE',
    'X509v3 Key Usage: critical', 'Certificate Sign, CRL Sign',
    'X509v3 Subject Key Identifier:', '<keyid>',
  ].join('\n'));
  assert.equal(ca.version, 3);
  assert.match(openssl(['x509', '-in', caFile, '-noout', '-text']).stdout, /Version: 3 \(0x2\)/);
  assert.equal(keyIdOf(caFile, 'subjectKeyIdentifier'), expectedKeyId(caFile));
  verify(caFile); // self-signed: the signature checks under its own key
  assert.equal(lifetime(caFile), 3650 * 86_400_000);
});

test('SERVER profile: SAN (DNS and IP), digitalSignature critical, serverAuth, CA:FALSE critical', async () => {
  const f = save('server.crt', await serverCertificate(issuer, { hostname: 'ca.example.net', sans: ['127.0.0.1', 'ca'], serial: 5n, publicKey: k(), notBefore: now, days: 365 }));
  verify(f);
  assert.equal(extensionsText(f), [
    'X509v3 extensions:',
    'X509v3 Basic Constraints: critical', 'CA:FALSE',
    'X509v3 Key Usage: critical', 'Digital Signature',
    'X509v3 Extended Key Usage:', 'TLS Web Server Authentication',
    'X509v3 Subject Alternative Name:', 'DNS:ca.example.net, IP Address:127.0.0.1, DNS:ca',
    'X509v3 Subject Key Identifier:', '<keyid>',
    'X509v3 Authority Key Identifier:', '<keyid>',
  ].join('\n'));
  assert.match(openssl(['x509', '-in', f, '-noout', '-subject']).stdout, /subject=O = "Linaro, LTD", CN = ca\.example\.net\n/);
  assert.equal(keyIdOf(f, 'subjectKeyIdentifier'), expectedKeyId(f));
  assert.equal(keyIdOf(f, 'authorityKeyIdentifier'), keyIdOf(caFile, 'subjectKeyIdentifier'));
  assert.equal(lifetime(f), 365 * 86_400_000);
});

const CLIENT_EXTS = [
  'X509v3 extensions:',
  'X509v3 Basic Constraints: critical', 'CA:FALSE',
  'X509v3 Key Usage: critical', 'Digital Signature',
  'X509v3 Extended Key Usage:', 'TLS Web Client Authentication',
  'X509v3 Subject Key Identifier:', '<keyid>',
  'X509v3 Authority Key Identifier:', '<keyid>',
].join('\n');

test('BOOTSTRAP profile: the bootstrap subject, clientAuth, CA:FALSE critical', async () => {
  const f = save('bootstrap.crt', await bootstrapCertificate(issuer, { serial: 6n, publicKey: k(), notBefore: now, days: 365 }));
  verify(f);
  assert.equal(extensionsText(f), CLIENT_EXTS);
  assert.match(openssl(['x509', '-in', f, '-noout', '-subject']).stdout, /subject=O = "Linaro, LTD", CN = bootstrap-register-1, OU = LinaroCA Bootstrap Cert\n/);
  assert.equal(keyIdOf(f, 'authorityKeyIdentifier'), keyIdOf(caFile, 'subjectKeyIdentifier'));
  const p = openssl(['x509', '-in', f, '-noout', '-purpose']).stdout;
  assert.match(p, /SSL client : Yes/);
  assert.match(p, /SSL server : No/);
});

test('operator profile carries the operator OU', async () => {
  const f = save('operator.crt', await operatorCertificate(issuer, { cn: 'alice', serial: 8n, publicKey: k(), notBefore: now, days: 30 }));
  verify(f);
  assert.match(openssl(['x509', '-in', f, '-noout', '-subject']).stdout, /subject=O = "Linaro, LTD", CN = alice, OU = LinaroCA Operator Cert\n/);
  assert.equal(extensionsText(f), CLIENT_EXTS);
  assert.equal(lifetime(f), 30 * 86_400_000);
});

test('device profile: subject and key from the CSR, nothing else from it; 1 year; AKI = CA SKI', async () => {
  // An openssl-made CSR that asks for more than a device may have (CA:TRUE, a SAN): none of it may show.
  const csrFile = join(tmp.dir, 'device.csr');
  const made = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tmp.dir, 'device.key'), '-out', csrFile,
    '-subj', '/O=Test Vendor/CN=56d38f73-3f6f-4a59-86bc-d315a1ccc634/OU=Signing', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'subjectAltName=DNS:evil.example']);
  assert.equal(made.code, 0, made.stderr);
  const csrDer = openssl(['req', '-in', csrFile, '-outform', 'DER']).out;
  const csr = await parseCsr(csrDer);
  const der = await deviceCertificate(issuer, { subject: csr.subject, serial: 1795721654822870144n, publicKey: csr.spki, notBefore: now, days: 365 });
  const f = save('device.crt', der);
  verify(f);
  assert.equal(extensionsText(f), CLIENT_EXTS);
  const show = (args: string[]) => openssl([...args, '-noout', '-nameopt', 'RFC2253', '-subject']).stdout.replace(/^subject=/, '');
  assert.equal(show(['x509', '-in', f]), show(['req', '-in', csrFile]), 'the subject openssl reads in both');
  assert.equal(show(['x509', '-in', f]), 'OU=Signing,CN=56d38f73-3f6f-4a59-86bc-d315a1ccc634,O=Test Vendor\n');
  assert.equal(openssl(['x509', '-in', f, '-noout', '-pubkey']).stdout, openssl(['req', '-in', csrFile, '-noout', '-pubkey']).stdout, 'the CSR\'s public key');
  assert.equal(openssl(['x509', '-in', f, '-noout', '-serial']).stdout, 'serial=18EBAF54B7319C80\n');
  assert.equal(lifetime(f), 365 * 86_400_000);
  assert.equal(keyIdOf(f, 'authorityKeyIdentifier'), keyIdOf(caFile, 'subjectKeyIdentifier'));
  assert.equal(keyIdOf(f, 'subjectKeyIdentifier'), expectedKeyId(f));
  assert.deepEqual(parseCertificate(der).issuerDer, ca.subjectDer, 'the issuer is the CA subject byte for byte');
});

test('no issued certificate is valid beyond the CA', async () => {
  const late = new Date(ca.notAfter.getTime() - 10 * 86_400_000);
  const d = parseCertificate(await deviceCertificate(issuer, { subject: dn({ CN: 'x' }), serial: 10n, publicKey: k(), notBefore: late, days: 365 }));
  assert.equal(d.notAfter.getTime(), ca.notAfter.getTime());
  await assert.rejects(
    () => deviceCertificate(issuer, { subject: dn({ CN: 'x' }), serial: 11n, publicKey: k(), notBefore: new Date(ca.notAfter.getTime() + 1000), days: 1 }),
    /expired/,
  );
});

test('a CA made by the original Go tool loads (EC PARAMETERS + SEC1 key) and signs certificates openssl accepts', async () => {
  const dir = join(tmp.dir, 'go');
  cpSync(join(FIXTURE, 'certs'), dir, { recursive: true });
  const goCa = new CertsDir(dir).loadCa();
  // The fixture CA is valid 2026-11-26 .. 2027-11-26; issue inside that window, whatever today is.
  const at = new Date('2027-03-01T00:00:00Z');
  const csr = await parseCsr(await buildCsr(dn({ O: 'Test Vendor', CN: '3e100bab-74d5-472d-a213-dae9e38160e6' }), generateKey()));
  const der = await deviceCertificate(goCa.issuer, { subject: csr.subject, serial: 1795722176495076999n, publicKey: csr.spki, notBefore: at, days: 365 });
  const f = save('go-device.crt', der);
  const r = openssl(['verify', '-attime', String(at.getTime() / 1000 + 60), '-CAfile', join(dir, 'CA.crt'), f]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // capped at the Go CA's end of validity
  assert.equal(parseCertificate(der).notAfter.toISOString(), '2027-11-26T19:42:54.000Z');
  // AKI matches the Go CA's SKI
  assert.match(openssl(['x509', '-in', f, '-noout', '-ext', 'authorityKeyIdentifier']).stdout, /83:71:A8:63:76:BE:9E:90:35:D8:62:47:77:82:4E:FD:0F:80:BF:CB/);
});

test('a CA key that does not match the certificate is refused', async () => {
  const dir = join(tmp.dir, 'mismatch');
  cpSync(join(FIXTURE, 'certs'), dir, { recursive: true });
  cpSync(join(dir, 'SERVER.key'), join(dir, 'CA.key'));
  assert.throws(() => new CertsDir(dir).loadCa(), /is not the key of/);
});
