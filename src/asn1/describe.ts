import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { parseCertificate, serialFromDer } from './certificate.js';
import { parseCsr } from './csr.js';
import { describeKey, publicKeyFromSpki, spkiDer, type KeyDescription } from './keys.js';
import { formatName, fromAsnName } from './name.js';
import { looksLikePem, parsePemBlocks } from './pem.js';
import { SIGNATURE_NAMES } from './signer.js';
import { LitebootError } from '../errors.js';

/** What `liteboot inspect` says about one object; `--json` prints this as it is. */
export type Description =
  | {
      kind: 'certificate';
      version: number;
      subject: string;
      issuer: string;
      selfIssued: boolean;
      /** Decimal, exact (serials exceed 2^53). */
      serial: string;
      serialHex: string;
      notBefore: string;
      notAfter: string;
      key: KeyDescription;
      signatureAlgorithm: string;
      extensions: { name: string; oid: string; critical: boolean; value: string }[];
      fingerprints: { sha256: string; sha1: string };
    }
  | {
      kind: 'csr';
      subject: string;
      key: KeyDescription;
      signatureAlgorithm: string;
      signatureValid: boolean;
      requestedExtensions: string[];
      fingerprints: { sha256: string };
    }
  | {
      kind: 'crl';
      issuer: string;
      thisUpdate: string;
      nextUpdate: string | null;
      signatureAlgorithm: string;
      /** Decimal serials of the revoked certificates. */
      revoked: { serial: string; revokedAt: string }[];
    }
  | { kind: 'private-key'; format: string; key: KeyDescription; publicKeySha256: string }
  | { kind: 'public-key'; key: KeyDescription; publicKeySha256: string };

function fingerprint(alg: 'sha256' | 'sha1', der: Uint8Array): string {
  return createHash(alg).update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

function sigName(oid: string): string {
  return SIGNATURE_NAMES[oid] ?? oid;
}

export function describeCertificate(der: Uint8Array): Description {
  const c = parseCertificate(der);
  return {
    kind: 'certificate',
    version: c.version,
    subject: formatName(c.subject),
    issuer: formatName(c.issuer),
    selfIssued: c.subjectDer.equals(c.issuerDer),
    serial: c.serial.toString(10),
    serialHex: c.serial.toString(16),
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    key: describeKey(c.publicKey),
    signatureAlgorithm: sigName(c.signatureAlgorithm),
    extensions: c.extensions.map((e) => ({ name: e.name, oid: e.oid, critical: e.critical, value: e.value })),
    fingerprints: { sha256: fingerprint('sha256', der), sha1: fingerprint('sha1', der) },
  };
}

export async function describeCsr(der: Uint8Array): Promise<Description> {
  const r = await parseCsr(der);
  return {
    kind: 'csr',
    subject: formatName(r.subject),
    key: describeKey(r.publicKey),
    signatureAlgorithm: sigName(r.signatureAlgorithm),
    signatureValid: r.signatureValid,
    requestedExtensions: r.requestedExtensions,
    fingerprints: { sha256: fingerprint('sha256', der) },
  };
}

/** A CRL (RFC 5280 §5): issuer, validity and the serials it lists. */
export function describeCrl(der: Uint8Array): Description {
  let crl: CertificateList;
  try {
    crl = AsnConvert.parse(der, CertificateList);
  } catch (e) {
    throw new LitebootError('BAD_DER', 'not a DER CRL', { cause: e });
  }
  const t = crl.tbsCertList;
  return {
    kind: 'crl',
    issuer: formatName(fromAsnName(t.issuer)),
    thisUpdate: t.thisUpdate.getTime().toISOString(),
    nextUpdate: t.nextUpdate ? t.nextUpdate.getTime().toISOString() : null,
    signatureAlgorithm: sigName(crl.signatureAlgorithm.algorithm),
    revoked: (t.revokedCertificates ?? []).map((r) => ({ serial: serialFromDer(new Uint8Array(r.userCertificate)).toString(), revokedAt: r.revocationDate.getTime().toISOString() })),
  };
}

function describePrivate(key: KeyObject, format: string): Description {
  return { kind: 'private-key', format, key: describeKey(key), publicKeySha256: fingerprint('sha256', spkiDer(key)) };
}

function describePublic(key: KeyObject): Description {
  return { kind: 'public-key', key: describeKey(key), publicKeySha256: fingerprint('sha256', spkiDer(key)) };
}

function tryPrivateDer(der: Buffer): Description | undefined {
  for (const type of ['pkcs8', 'sec1', 'pkcs1'] as const) {
    try {
      return describePrivate(createPrivateKey({ key: der, format: 'der', type }), type === 'pkcs8' ? 'PKCS#8' : type === 'sec1' ? 'SEC1' : 'PKCS#1');
    } catch {
      /* try the next encoding */
    }
  }
  return undefined;
}

async function describeDer(der: Buffer): Promise<Description> {
  const attempts: (() => Description | Promise<Description>)[] = [
    () => describeCertificate(der),
    () => describeCsr(der),
    () => describeCrl(der),
    () => describePublic(publicKeyFromSpki(der)),
  ];
  for (const attempt of attempts) {
    try {
      return await attempt();
    } catch {
      /* not this kind */
    }
  }
  const priv = tryPrivateDer(der);
  if (priv) return priv;
  throw new LitebootError('UNRECOGNISED_INPUT', 'not a certificate, CSR, key or CRL in PEM or DER');
}

const PEM_KINDS: Record<string, (der: Buffer) => Description | Promise<Description>> = {
  CERTIFICATE: describeCertificate,
  'CERTIFICATE REQUEST': describeCsr,
  'NEW CERTIFICATE REQUEST': describeCsr,
  'PUBLIC KEY': (der) => describePublic(publicKeyFromSpki(der)),
  'X509 CRL': describeCrl,
  'EC PRIVATE KEY': (der) => describePrivate(createPrivateKey({ key: der, format: 'der', type: 'sec1' }), 'SEC1'),
  'PRIVATE KEY': (der) => describePrivate(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), 'PKCS#8'),
  'RSA PRIVATE KEY': (der) => describePrivate(createPrivateKey({ key: der, format: 'der', type: 'pkcs1' }), 'PKCS#1'),
};

/**
 * Recognises every object in a file (PEM, possibly several blocks, or one DER object).
 * Private keys are described by type and public-key fingerprint only, never their contents.
 */
export async function describeObjects(data: Uint8Array): Promise<Description[]> {
  if (looksLikePem(data)) {
    const text = Buffer.from(data).toString('utf8');
    const out: Description[] = [];
    for (const b of parsePemBlocks(text)) {
      if (b.label === 'EC PARAMETERS') continue; // openssl ecparam -genkey writes it before the key
      const describe = PEM_KINDS[b.label];
      if (!describe) throw new LitebootError('UNRECOGNISED_INPUT', `PEM block "${b.label}" is not something liteboot reads`);
      try {
        out.push(await describe(b.der));
      } catch (e) {
        throw new LitebootError('UNRECOGNISED_INPUT', `the PEM block "${b.label}" does not parse: ${(e as Error).message}`, { cause: e });
      }
    }
    if (out.length === 0) throw new LitebootError('UNRECOGNISED_INPUT', 'no PEM block liteboot reads was found');
    return out;
  }
  return [await describeDer(Buffer.from(data))];
}
