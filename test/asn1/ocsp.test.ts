import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseCertificate } from '../../src/asn1/certificate.js';
import { bitString, contextConstructed, integer, NULL, octetString, oid, sequence, TAG, tlv } from '../../src/asn1/der.js';
import { keyIdentifier } from '../../src/asn1/extensions.js';
import { parsePrivateKeyPem } from '../../src/asn1/keys.js';
import {
  buildOcspResponse,
  certIdMatchesIssuer,
  generalizedTime,
  issuerHashes,
  MAX_OCSP_REQUESTS,
  ocspErrorResponse,
  parseOcspRequest,
  type IssuerHashes,
  type OcspErrorStatus,
  type OcspResponseTemplate,
} from '../../src/asn1/ocsp.js';
import { OID } from '../../src/asn1/oids.js';
import { keySigner, type Signer } from '../../src/asn1/signer.js';
import { LitebootError } from '../../src/errors.js';
import { makeCaDir } from '../helpers/server.js';
import { openssl, tempDir } from '../helpers/run.js';

const tmp = tempDir('liteboot-ocsp-');
after(tmp.cleanup);
const f = (name: string) => join(tmp.dir, name);

// Serials: one above 2^53 (must survive as a bigint), one small.
const SERIAL_1 = 0x18ebafce2d47c57en;
const SERIAL_2 = 0x1234n;
// Fixed times, all in the past, so openssl's "not yet valid" check passes and the output is stable.
const PRODUCED = new Date('2026-01-02T03:04:05.678Z');
const THIS_UPDATE = new Date('2025-06-01T00:00:00Z');
const REVOKED_AT = new Date('2025-03-04T05:06:07Z');

const CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
authorityKeyIdentifier = keyid
[ocsp_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
authorityKeyIdentifier = keyid
`;

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

/** A P-256 key and a certificate issued by the openssl CA. */
function issue(name: string, serial: bigint, ext: string): void {
  ok(openssl(['req', '-new', '-config', f('cnf'), '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`]), `${name} csr`);
  ok(openssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('CA.crt'), '-CAkey', f('CA.key'), '-set_serial', `0x${serial.toString(16)}`,
    '-days', '365', '-extfile', f('cnf'), '-extensions', ext, '-out', f(`${name}.crt`)]), `${name} cert`);
}

let ca: { hashes: IssuerHashes; signer: Signer };

before(() => {
  writeFileSync(f('cnf'), CNF);
  ok(openssl(['req', '-x509', '-config', f('cnf'), '-extensions', 'ca_ext', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f('CA.key'), '-out', f('CA.crt'), '-subj', '/O=Liteboot Test/CN=OCSP Test CA', '-days', '3650']), 'CA');
  issue('leaf1', SERIAL_1, 'leaf_ext');
  issue('leaf2', SERIAL_2, 'leaf_ext');
  issue('responder', 0x77n, 'ocsp_ext');
  const cert = parseCertificate(new X509Certificate(readFileSync(f('CA.crt'))).raw);
  ca = { hashes: issuerHashes(cert.subjectDer, cert.spki), signer: keySigner(parsePrivateKeyPem(readFileSync(f('CA.key'), 'utf8'), 'CA.key')) };
});

let reqCount = 0;
/** An OCSP request written by openssl; returns its file, DER and `-req_text`. */
function opensslRequest(args: string[]): { file: string; der: Buffer; text: string } {
  const file = f(`req${reqCount++}.der`);
  const text = ok(openssl(['ocsp', '-issuer', f('CA.crt'), ...args, '-reqout', file, '-req_text']), 'openssl ocsp request');
  return { file, der: readFileSync(file), text };
}

let respCount = 0;
/** Writes the response and has openssl verify it against the request file; returns everything it printed. */
function opensslCheck(resp: Buffer, args: string[]): { code: number; out: string } {
  const file = f(`resp${respCount++}.der`);
  writeFileSync(file, resp);
  const r = openssl(['ocsp', '-respin', file, '-issuer', f('CA.crt'), '-CAfile', f('CA.crt'), ...args]);
  return { code: r.code, out: r.stdout + r.stderr };
}

/** The hex openssl prints under a `-req_text` label. */
function textField(text: string, label: string): string {
  const m = new RegExp(`${label}:\\s*([0-9A-F]+)`).exec(text);
  assert.ok(m, `${label} in ${text}`);
  return m[1]!.toLowerCase();
}

function template(req: ReturnType<typeof parseOcspRequest>, extra: Partial<OcspResponseTemplate> = {}): OcspResponseTemplate {
  return {
    responderKeyId: ca.hashes.keyHashes.sha1,
    producedAt: PRODUCED,
    responses: req.requests.map((r) => ({ certId: r.der, status: 'good' as const, thisUpdate: THIS_UPDATE })),
    ...(req.nonce ? { nonce: req.nonce } : {}),
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// Requests from openssl

test('a SHA-1 request with a nonce: serial, hashes and nonce as openssl wrote them; the CertID matches the CA', () => {
  const r = opensslRequest(['-cert', f('leaf1.crt'), '-nonce']);
  const req = parseOcspRequest(r.der);
  assert.equal(req.requests.length, 1);
  const id = req.requests[0]!;
  assert.equal(id.hash, 'sha1');
  assert.equal(id.hashOid, OID.sha1);
  assert.equal(id.serial, SERIAL_1);
  assert.equal(id.issuerNameHash.toString('hex'), textField(r.text, 'Issuer Name Hash'));
  assert.equal(id.issuerKeyHash.toString('hex'), textField(r.text, 'Issuer Key Hash'));
  assert.equal(id.serial.toString(16), textField(r.text, 'Serial Number'));
  // openssl prints the extnValue: an OCTET STRING wrapping 16 random octets.
  assert.equal(req.nonce?.toString('hex'), textField(r.text, 'OCSP Nonce'));
  assert.equal(req.nonce!.subarray(0, 2).toString('hex'), '0410');
  assert.ok(r.der.includes(id.der) && id.der[0] === TAG.SEQUENCE, 'der is the CertID as received');
  assert.equal(req.signed, false);
  assert.deepEqual(req.unsupportedCriticalExtensions, []);
  assert.ok(certIdMatchesIssuer(id, ca.hashes));
  // The responder id is the CA's key identifier (RFC 6960 §4.2.2.3 = RFC 5280 §4.2.1.2 method 1).
  assert.deepEqual(ca.hashes.keyHashes.sha1, keyIdentifier(parseCertificate(new X509Certificate(readFileSync(f('CA.crt'))).raw).spki));
});

test('a SHA-256 request for two certificates without a nonce: two CertIDs in order', () => {
  const r = opensslRequest(['-sha256', '-cert', f('leaf1.crt'), '-cert', f('leaf2.crt'), '-no_nonce']);
  const req = parseOcspRequest(r.der);
  assert.deepEqual(req.requests.map((x) => x.serial), [SERIAL_1, SERIAL_2]);
  for (const id of req.requests) {
    assert.equal(id.hash, 'sha256');
    assert.equal(id.issuerNameHash.length, 32);
    assert.ok(certIdMatchesIssuer(id, ca.hashes));
  }
  assert.equal(req.requests[0]!.issuerNameHash.toString('hex'), textField(r.text, 'Issuer Name Hash'));
  assert.equal(req.nonce, undefined);
});

test('another issuer\'s CertID does not match, and neither does a SHA-1 CertID against SHA-256 hashes', () => {
  const id = parseOcspRequest(opensslRequest(['-cert', f('leaf1.crt')]).der).requests[0]!;
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const subject = parseCertificate(new X509Certificate(readFileSync(f('CA.crt'))).raw).subjectDer;
  assert.equal(certIdMatchesIssuer(id, issuerHashes(subject, other)), false);
  const swapped: IssuerHashes = { nameHashes: ca.hashes.nameHashes, keyHashes: { sha1: ca.hashes.keyHashes.sha256, sha256: ca.hashes.keyHashes.sha1 } };
  assert.equal(certIdMatchesIssuer(id, swapped), false);
});

test('a signed request (requestorName and optionalSignature) parses; the signature is reported, not checked', () => {
  const r = opensslRequest(['-cert', f('leaf1.crt'), '-signer', f('leaf1.crt'), '-signkey', f('leaf1.key')]);
  assert.match(r.text, /Requestor Name/);
  const req = parseOcspRequest(r.der);
  assert.equal(req.signed, true);
  assert.equal(req.requests[0]!.serial, SERIAL_1);
});

// ---------------------------------------------------------------------------------------------
// Responses checked by openssl

test('good: openssl verifies the signature, matches the CertID and the nonce', async () => {
  const r = opensslRequest(['-cert', f('leaf1.crt'), '-nonce']);
  const resp = await buildOcspResponse(template(parseOcspRequest(r.der)), ca.signer);
  const c = opensslCheck(resp, ['-reqin', r.file, '-resp_text']);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /Response verify OK/);
  assert.match(c.out, /Cert Status: good/);
  assert.match(c.out, /Produced At: Jan {2}2 03:04:05 2026 GMT/);
  assert.match(c.out, /This Update: Jun {2}1 00:00:00 2025 GMT/);
  assert.match(c.out, /OCSP Nonce:/);
  assert.doesNotMatch(c.out, /WARNING: no nonce|Nonce Verify error/);
  // openssl builds its own CertID from the certificate and finds our answer for it.
  const s = opensslCheck(resp, ['-cert', f('leaf1.crt'), '-no_nonce']);
  assert.match(s.out, /leaf1\.crt: good/);
  assert.match(s.out, /Response verify OK/);
});

test('revoked with a reason: openssl prints the revocation time and keyCompromise', async () => {
  const r = opensslRequest(['-cert', f('leaf1.crt'), '-nonce']);
  const req = parseOcspRequest(r.der);
  const resp = await buildOcspResponse(
    template(req, { responses: [{ certId: req.requests[0]!.der, status: 'revoked', revokedAt: REVOKED_AT, reason: 1, thisUpdate: THIS_UPDATE }] }),
    ca.signer,
  );
  const c = opensslCheck(resp, ['-reqin', r.file, '-resp_text']);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /Response verify OK/);
  assert.match(c.out, /Cert Status: revoked/);
  assert.match(c.out, /Revocation Time: Mar {2}4 05:06:07 2025 GMT/);
  assert.match(c.out, /Revocation Reason: keyCompromise \(0x1\)/);
  assert.doesNotMatch(c.out, /WARNING: no nonce|Nonce Verify error/);
  const s = opensslCheck(resp, ['-cert', f('leaf1.crt'), '-no_nonce']);
  assert.match(s.out, /leaf1\.crt: revoked/);
  assert.match(s.out, /Reason: keyCompromise/);
});

test('revoked without a reason (or unspecified): no revocationReason', async () => {
  const r = opensslRequest(['-cert', f('leaf1.crt'), '-no_nonce']);
  const req = parseOcspRequest(r.der);
  for (const reason of [undefined, 0]) {
    const resp = await buildOcspResponse(
      template(req, { responses: [{ certId: req.requests[0]!.der, status: 'revoked', revokedAt: REVOKED_AT, reason, thisUpdate: THIS_UPDATE }] }),
      ca.signer,
    );
    const c = opensslCheck(resp, ['-reqin', r.file, '-resp_text']);
    assert.equal(c.code, 0, c.out);
    assert.match(c.out, /Cert Status: revoked/);
    assert.doesNotMatch(c.out, /Revocation Reason/);
  }
  await assert.rejects(
    buildOcspResponse(template(req, { responses: [{ certId: req.requests[0]!.der, status: 'revoked', revokedAt: REVOKED_AT, reason: 7, thisUpdate: THIS_UPDATE }] }), ca.signer),
    (e) => e instanceof LitebootError && e.code === 'BAD_REASON',
  );
});

test('unknown, and two answers in one response with nextUpdate (SHA-256 CertIDs)', async () => {
  const r = opensslRequest(['-sha256', '-cert', f('leaf1.crt'), '-cert', f('leaf2.crt'), '-nonce']);
  const req = parseOcspRequest(r.der);
  const resp = await buildOcspResponse(
    template(req, {
      responses: [
        { certId: req.requests[0]!.der, status: 'unknown', thisUpdate: THIS_UPDATE },
        { certId: req.requests[1]!.der, status: 'good', thisUpdate: THIS_UPDATE, nextUpdate: new Date('2099-01-01T00:00:00Z') },
      ],
    }),
    ca.signer,
  );
  const c = opensslCheck(resp, ['-reqin', r.file, '-resp_text']);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /Response verify OK/);
  assert.match(c.out, /Cert Status: unknown[\s\S]*Cert Status: good/);
  assert.match(c.out, /Next Update: Jan {2}1 00:00:00 2099 GMT/);
  assert.doesNotMatch(c.out, /WARNING: no nonce|Nonce Verify error/);
  const s = opensslCheck(resp, ['-sha256', '-cert', f('leaf1.crt'), '-cert', f('leaf2.crt'), '-no_nonce']);
  assert.match(s.out, /leaf1\.crt: unknown/);
  assert.match(s.out, /leaf2\.crt: good/);
});

test('the nonce check is live: a missing or different nonce is what openssl reports', async () => {
  const r = opensslRequest(['-cert', f('leaf1.crt'), '-nonce']);
  const req = parseOcspRequest(r.der);
  const { nonce: _, ...noNonce } = template(req);
  const missing = opensslCheck(await buildOcspResponse(noNonce, ca.signer), ['-reqin', r.file]);
  assert.match(missing.out, /WARNING: no nonce in response/);
  const other = Buffer.from(req.nonce!);
  other[other.length - 1]! ^= 1;
  const wrong = opensslCheck(await buildOcspResponse(template(req, { nonce: other }), ca.signer), ['-reqin', r.file]);
  assert.match(wrong.out, /Nonce Verify error/);
});

test('a bare nonce (no inner OCTET STRING) is echoed exactly as received and openssl accepts the echo', async () => {
  const id = parseOcspRequest(opensslRequest(['-cert', f('leaf1.crt'), '-no_nonce']).der).requests[0]!;
  const bare = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const der = sequence(sequence(sequence(sequence(id.der)), contextConstructed(2, sequence(sequence(oid(OID.ocspNonce), octetString(bare))))));
  const req = parseOcspRequest(der);
  assert.deepEqual(req.nonce, bare);
  writeFileSync(f('bare-req.der'), der);
  const c = opensslCheck(await buildOcspResponse(template(req), ca.signer), ['-reqin', f('bare-req.der'), '-resp_text']);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /Response verify OK/);
  assert.doesNotMatch(c.out, /WARNING: no nonce|Nonce Verify error/);
});

test('a delegated responder: its certificate in certs, its key id as responderID (RFC 6960 §4.2.2.2)', async () => {
  const r = opensslRequest(['-cert', f('leaf1.crt'), '-nonce']);
  const responderDer = new X509Certificate(readFileSync(f('responder.crt'))).raw;
  const responder = keySigner(parsePrivateKeyPem(readFileSync(f('responder.key'), 'utf8'), 'responder.key'));
  const resp = await buildOcspResponse(
    template(parseOcspRequest(r.der), { responderKeyId: keyIdentifier(parseCertificate(responderDer).spki), certs: [responderDer] }),
    responder,
  );
  const c = opensslCheck(resp, ['-reqin', r.file, '-resp_text']);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /Response verify OK/);
  assert.match(c.out, /Subject: CN ?= ?responder/);
  assert.match(c.out, /Cert Status: good/);
});

test('a CA made by liteboot setup answers for its bootstrap certificate', async () => {
  const dir = join(tmp.dir, 'lb');
  await makeCaDir(dir);
  const crt = (n: string) => join(dir, 'certs', `${n}.crt`);
  const cert = parseCertificate(new X509Certificate(readFileSync(crt('CA'))).raw);
  const hashes = issuerHashes(cert.subjectDer, cert.spki);
  const reqFile = f('lb-req.der');
  ok(openssl(['ocsp', '-issuer', crt('CA'), '-sha256', '-cert', crt('BOOTSTRAP'), '-nonce', '-reqout', reqFile]), 'request');
  const req = parseOcspRequest(readFileSync(reqFile));
  assert.ok(certIdMatchesIssuer(req.requests[0]!, hashes));
  assert.equal(req.requests[0]!.serial, parseCertificate(new X509Certificate(readFileSync(crt('BOOTSTRAP'))).raw).serial);
  const resp = await buildOcspResponse(
    { ...template(req), responderKeyId: hashes.keyHashes.sha1 },
    keySigner(parsePrivateKeyPem(readFileSync(join(dir, 'certs', 'CA.key'), 'utf8'), 'CA.key')),
  );
  writeFileSync(f('lb-resp.der'), resp);
  const c = openssl(['ocsp', '-respin', f('lb-resp.der'), '-issuer', crt('CA'), '-CAfile', crt('CA'), '-reqin', reqFile, '-resp_text']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout + c.stderr, /Response verify OK/);
  assert.match(c.stdout, /Cert Status: good/);
  assert.doesNotMatch(c.stdout + c.stderr, /WARNING: no nonce|Nonce Verify error/);
});

test('the builder is pure: same inputs, same bytes (Ed25519 signatures are deterministic)', async () => {
  const ed = keySigner(generateKeyPairSync('ed25519').privateKey);
  const id = parseOcspRequest(opensslRequest(['-cert', f('leaf1.crt'), '-no_nonce']).der).requests[0]!;
  const t: OcspResponseTemplate = { responderKeyId: Buffer.alloc(20, 7), producedAt: PRODUCED, responses: [{ certId: id.der, status: 'good', thisUpdate: THIS_UPDATE }] };
  const a = await buildOcspResponse(t, ed);
  assert.deepEqual(await buildOcspResponse({ ...t }, ed), a);
  assert.notDeepEqual(await buildOcspResponse({ ...t, producedAt: new Date(PRODUCED.getTime() + 1000) }, ed), a);
  // The fixed head: SEQUENCE, successful, [0] { id-pkix-ocsp-basic, OCTET STRING }.
  assert.match(a.toString('hex'), /^30(81..|82....)0a0100a0(81..|82....)30(81..|82....)06092b0601050507300101/);
  await assert.rejects(buildOcspResponse({ ...t, responderKeyId: Buffer.alloc(32) }, ed), /20-octet/);
});

test('the bytes equal a plain der.ts composition of RFC 6960 §4.2.1, for every length form (Ed25519)', async () => {
  const key = generateKeyPairSync('ed25519').privateKey;
  const ed = keySigner(key);
  const id = parseOcspRequest(opensslRequest(['-cert', f('leaf1.crt'), '-no_nonce']).der).requests[0]!;
  const cert = new X509Certificate(readFileSync(f('responder.crt'))).raw;
  const nonce = octetString(Buffer.alloc(16, 0xab));
  // no certs: 1-octet lengths (0x81); one certificate: 0x82; 200 certificates (> 64 KiB): 0x83
  for (const certs of [[], [cert], Array.from({ length: 200 }, () => cert)]) {
    const t: OcspResponseTemplate = {
      responderKeyId: Buffer.alloc(20, 7),
      producedAt: PRODUCED,
      responses: [{ certId: id.der, status: 'revoked', revokedAt: REVOKED_AT, reason: 4, thisUpdate: THIS_UPDATE, nextUpdate: PRODUCED }],
      nonce,
      certs,
    };
    const tbs = sequence(
      contextConstructed(2, octetString(t.responderKeyId)),
      generalizedTime(PRODUCED),
      sequence(sequence(id.der, tlv(0xa1, generalizedTime(REVOKED_AT), contextConstructed(0, tlv(0x0a, Buffer.from([4])))), generalizedTime(THIS_UPDATE), contextConstructed(0, generalizedTime(PRODUCED)))),
      contextConstructed(1, sequence(sequence(oid(OID.ocspNonce), octetString(nonce)))),
    );
    const basic = sequence(tbs, sequence(oid(OID.ed25519)), bitString(sign(null, tbs, key)), ...(certs.length ? [contextConstructed(0, sequence(...certs))] : []));
    const expected = sequence(Buffer.from([0x0a, 1, 0]), contextConstructed(0, sequence(oid(OID.ocspBasic), octetString(basic))));
    assert.equal((await buildOcspResponse(t, ed)).toString('hex'), expected.toString('hex'), `${certs.length} certs`);
  }
});

test('OCSP times are GeneralizedTime in every year, whole seconds, Z', () => {
  assert.equal(generalizedTime(new Date('2026-01-02T03:04:05.678Z')).toString('latin1'), '\x18\x0f20260102030405Z');
  assert.equal(generalizedTime(new Date('2049-12-31T23:59:59Z')).toString('latin1'), '\x18\x0f20491231235959Z');
  assert.equal(generalizedTime(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
  assert.throws(() => generalizedTime(new Date(NaN)), (e) => e instanceof LitebootError && e.code === 'BAD_DER');
});

test('error responses are the fixed bytes of RFC 6960 §4.2.1, and openssl reads each status', () => {
  const table: [OcspErrorStatus, number, string][] = [
    ['malformedRequest', 1, 'malformedrequest'],
    ['internalError', 2, 'internalerror'],
    ['tryLater', 3, 'trylater'],
    ['sigRequired', 5, 'sigrequired'],
    ['unauthorized', 6, 'unauthorized'],
  ];
  for (const [status, code, name] of table) {
    const der = ocspErrorResponse(status);
    assert.equal(der.toString('hex'), `30030a010${code}`);
    const file = f(`err-${status}.der`);
    writeFileSync(file, der);
    const r = openssl(['ocsp', '-respin', file, '-resp_text']);
    assert.match(r.stdout + r.stderr, new RegExp(`Responder Error: ${name} \\(${code}\\)`));
  }
});

// ---------------------------------------------------------------------------------------------
// Malformed requests

function assertBad(der: Uint8Array, why: string, re?: RegExp): void {
  let thrown: unknown;
  try {
    parseOcspRequest(der);
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof LitebootError, `${why}: expected a LitebootError, got ${String(thrown)}`);
  assert.equal(thrown.code, 'BAD_DER', why);
  if (re) assert.match(thrown.message, re, why);
}

const fakeId = (o: { alg?: Buffer; name?: Buffer; key?: Buffer; serial?: Buffer } = {}) =>
  sequence(o.alg ?? sequence(oid(OID.sha1), NULL), octetString(o.name ?? Buffer.alloc(20, 1)), octetString(o.key ?? Buffer.alloc(20, 2)), o.serial ?? integer(5n));
const requestOf = (ids: Buffer[], opts: { head?: Buffer[]; exts?: Buffer[]; tail?: Buffer[] } = {}) =>
  sequence(sequence(...(opts.head ?? []), sequence(...ids.map((i) => sequence(i))), ...(opts.exts ? [contextConstructed(2, sequence(...opts.exts))] : [])), ...(opts.tail ?? []));
const ext = (id: string, value: Buffer, critical?: Buffer) => sequence(oid(id), ...(critical ? [critical] : []), octetString(value));
const nonceExt = (n: Buffer) => ext(OID.ocspNonce, octetString(n));

test('hand-built variants that are valid parse', () => {
  assert.equal(parseOcspRequest(requestOf([fakeId()])).requests[0]!.serial, 5n);
  // version v1 written out, requestorName, NULL parameters absent, a SHA-384 CertID (no issuer matches it)
  const v = parseOcspRequest(requestOf([fakeId({ alg: sequence(oid(OID.sha1)) })], { head: [contextConstructed(0, integer(0n)), contextConstructed(1, tlv(0x82, Buffer.from('ocsp.example')))] }));
  assert.equal(v.requests[0]!.hash, 'sha1');
  const sha384 = parseOcspRequest(requestOf([fakeId({ alg: sequence(oid('2.16.840.1.101.3.4.2.2'), NULL), name: Buffer.alloc(48), key: Buffer.alloc(48) })])).requests[0]!;
  assert.equal(sha384.hash, null);
  assert.equal(sha384.hashOid, '2.16.840.1.101.3.4.2.2');
  assert.equal(certIdMatchesIssuer(sha384, ca.hashes), false);
  // negative serial and serial 0 are reported as sent
  assert.equal(parseOcspRequest(requestOf([fakeId({ serial: tlv(TAG.INTEGER, Buffer.from([0xff])) })])).requests[0]!.serial, -1n);
  // unknown extensions: critical ones are listed, non-critical ignored; explicit critical FALSE tolerated
  const x = parseOcspRequest(requestOf([fakeId()], {
    exts: [nonceExt(Buffer.alloc(32, 9)), ext('1.2.3.4', Buffer.from([5]), Buffer.from([1, 1, 0xff])), ext('1.2.3.5', Buffer.from([5]), Buffer.from([1, 1, 0]))],
  }));
  assert.deepEqual(x.unsupportedCriticalExtensions, ['1.2.3.4']);
  assert.equal(x.nonce!.toString('hex'), '0420' + '09'.repeat(32));
  // a 128-octet nonce is the longest allowed (RFC 9654 §2.1)
  assert.equal(parseOcspRequest(requestOf([fakeId()], { exts: [nonceExt(Buffer.alloc(128, 1))] })).nonce!.length, 131);
});

test(`at most ${MAX_OCSP_REQUESTS} requests in one OCSPRequest`, () => {
  assert.equal(parseOcspRequest(requestOf(Array.from({ length: MAX_OCSP_REQUESTS }, () => fakeId()))).requests.length, MAX_OCSP_REQUESTS);
  assertBad(requestOf(Array.from({ length: MAX_OCSP_REQUESTS + 1 }, () => fakeId())), 'too many', /more than 64 certificates/);
  assert.throws(() => parseOcspRequest(requestOf([fakeId(), fakeId()]), 1), /more than 1/);
});

test('malformed requests all throw BAD_DER', () => {
  const good = requestOf([fakeId()], { exts: [nonceExt(Buffer.alloc(16, 3))] });
  let nested: Buffer = Buffer.alloc(0);
  for (let i = 0; i < 1000; i++) nested = sequence(nested);
  const flipped = Buffer.from(good);
  flipped[flipped.indexOf(Buffer.from([0x04, 0x14]))] = 0x05; // issuerNameHash OCTET STRING → NULL tag
  const table: [string, Buffer, RegExp?][] = [
    ['empty input', Buffer.alloc(0), /truncated/],
    ['outer tag flipped', Buffer.concat([Buffer.from([0x31]), good.subarray(1)]), /found 0x31/],
    ['a flipped tag inside the CertID', flipped, /expected tag 0x4/],
    ['trailing bytes', Buffer.concat([good, Buffer.from([0])]), /trailing/],
    ['trailing bytes inside the OCSPRequest', requestOf([fakeId()], { tail: [Buffer.from([0x05, 0x00])] }), /expected tag 0xa0, found 0x5/],
    ['huge length', Buffer.concat([Buffer.from([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]), good.subarray(2)]), /truncated/],
    ['a length of 9 octets', Buffer.from([0x30, 0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /too large/],
    ['indefinite length', Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(2), Buffer.from([0, 0])]), /indefinite/],
    ['1000 nested SEQUENCEs', nested, /expected tag 0x6/],
    ['zero requests', requestOf([]), /empty/],
    ['a SHA-1 hash of 19 octets', requestOf([fakeId({ name: Buffer.alloc(19) })]), /20 octets/],
    ['a SHA-256 OID with SHA-1 sized hashes', requestOf([fakeId({ alg: sequence(oid(OID.sha256), NULL) })]), /32 octets/],
    ['NULL parameters with content', requestOf([fakeId({ alg: sequence(oid(OID.sha1), tlv(TAG.NULL, Buffer.from([0]))) })]), /NULL/],
    ['parameters that are not NULL', requestOf([fakeId({ alg: sequence(oid(OID.sha1), oid('1.2.3')) })]), /expected tag 0x5, found 0x6/],
    ['an empty serial', requestOf([fakeId({ serial: tlv(TAG.INTEGER) })]), /empty INTEGER/],
    ['a non-minimal serial', requestOf([fakeId({ serial: tlv(TAG.INTEGER, Buffer.from([0, 5])) })]), /non-minimal/],
    ['a 65-octet serial', requestOf([fakeId({ serial: integer(1n << 512n) })]), /longer than 64/],
    ['version v2', requestOf([fakeId()], { head: [contextConstructed(0, integer(1n))] }), /version/],
    ['an empty nonce', requestOf([fakeId()], { exts: [nonceExt(Buffer.alloc(0))] }), /nonce/],
    ['a bare empty nonce', requestOf([fakeId()], { exts: [ext(OID.ocspNonce, Buffer.alloc(0))] }), /nonce/],
    ['a 129-octet nonce', requestOf([fakeId()], { exts: [nonceExt(Buffer.alloc(129))] }), /nonce/],
    ['two nonces', requestOf([fakeId()], { exts: [nonceExt(Buffer.alloc(16)), nonceExt(Buffer.alloc(16))] }), /twice/],
    ['empty requestExtensions', requestOf([fakeId()], { exts: [] }), /empty Extensions/],
    ['a BOOLEAN that is not DER', requestOf([fakeId()], { exts: [ext('1.2.3.4', Buffer.from([5]), Buffer.from([1, 1, 1]))] }), /BOOLEAN/],
    ['an extnValue that is not an OCTET STRING', requestOf([fakeId()], { exts: [sequence(oid('1.2.3.4'), integer(1n))] }), /OCTET STRING/],
    ['a TBSRequest element after the extensions', sequence(sequence(sequence(sequence(fakeId())), contextConstructed(3, NULL))), /found 0xa3/],
    ['an optionalSignature that is not a Signature', requestOf([fakeId()], { tail: [contextConstructed(0, NULL)] }), /expected tag 0x30, found 0x5/],
    ['no requestList', sequence(sequence(contextConstructed(0, integer(0n)))), /truncated/],
    ['a 100 kB hash OID', requestOf([fakeId({ alg: sequence(tlv(TAG.OID, Buffer.alloc(100_000, 0x81), Buffer.from([1]))) })]), /longer than 64/],
    ['a 100 kB critical extension OID', requestOf([fakeId()], { exts: [sequence(tlv(TAG.OID, Buffer.alloc(100_000, 0x81), Buffer.from([1])), Buffer.from([1, 1, 0xff]), octetString(Buffer.from([5])))] }), /longer than 64/],
    ['a multi-byte tag', Buffer.from([0x1f, 0x81, 0x00]), /multi-byte/],
  ];
  for (const [why, der, re] of table) assertBad(der, why, re);
});

test('an openssl request truncated at every length, and with every single bit flipped, never escapes BAD_DER', () => {
  const der = opensslRequest(['-sha256', '-cert', f('leaf1.crt'), '-cert', f('leaf2.crt'), '-nonce']).der;
  for (let n = 0; n < der.length; n++) assertBad(der.subarray(0, n), `truncated to ${n}`);
  let parsed = 0;
  for (let i = 0; i < der.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const m = Buffer.from(der);
      m[i]! ^= 1 << bit;
      try {
        parseOcspRequest(m);
        parsed++; // a flip inside a hash, serial or nonce is still a well-formed request
      } catch (e) {
        assert.ok(e instanceof LitebootError && e.code === 'BAD_DER', `flip ${i}.${bit}: ${String(e)}`);
      }
    }
  }
  assert.ok(parsed > 0 && parsed < der.length * 8);
});
