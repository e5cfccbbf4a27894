import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { LitebootError } from '../errors.js';
import { parsePemBlocks, toPem } from './pem.js';

/** Key types liteboot generates. CSRs may carry more (see {@link describeKey}). */
export type KeyAlgorithm = 'P-256' | 'P-384';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['P-256', 'P-384'];

export function generateKey(alg: KeyAlgorithm = 'P-256'): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: alg }).privateKey;
}

const PRIVATE_LABELS = new Set(['EC PRIVATE KEY', 'PRIVATE KEY', 'RSA PRIVATE KEY', 'ENCRYPTED PRIVATE KEY']);

/** Does this PEM text hold an encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`, RFC 5958 §3)? */
export function isEncryptedPrivateKeyPem(text: string): boolean {
  return parsePemBlocks(text).some((b) => b.label === 'ENCRYPTED PRIVATE KEY');
}

/**
 * A private key from PEM text. Accepts SEC1 (`EC PRIVATE KEY`, the original's format, possibly
 * preceded by the `EC PARAMETERS` block that `openssl ecparam -genkey` writes), PKCS#8, PKCS#1,
 * and encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`) given its passphrase. Legacy PEM encryption
 * (`Proc-Type: 4,ENCRYPTED`) is refused with a clear message.
 */
export function parsePrivateKeyPem(text: string, what: string, passphrase?: string): KeyObject {
  if (text.includes('Proc-Type: 4,ENCRYPTED')) {
    throw new LitebootError('BAD_KEY', `${what}: legacy PEM encryption (Proc-Type) is not supported; convert it (openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8)`);
  }
  const blocks = parsePemBlocks(text).filter((b) => PRIVATE_LABELS.has(b.label));
  if (blocks.length !== 1) {
    throw new LitebootError('BAD_KEY', `${what}: expected one private key in PEM (EC PRIVATE KEY or PRIVATE KEY), found ${blocks.length}`);
  }
  const b = blocks[0]!;
  if (b.label === 'ENCRYPTED PRIVATE KEY') {
    if (passphrase === undefined) throw new LitebootError('KEY_ENCRYPTED', `${what} is encrypted and no password was given`);
    try {
      return createPrivateKey({ key: b.der, format: 'der', type: 'pkcs8', passphrase });
    } catch (e) {
      // OpenSSL says `bad decrypt` for a wrong password; its text stays in the cause (--verbose never prints it).
      throw new LitebootError('BAD_PASSWORD', `wrong password for ${what}`, { cause: e });
    }
  }
  try {
    if (b.label === 'EC PRIVATE KEY') return createPrivateKey({ key: b.der, format: 'der', type: 'sec1' });
    if (b.label === 'RSA PRIVATE KEY') return createPrivateKey({ key: b.der, format: 'der', type: 'pkcs1' });
    return createPrivateKey({ key: b.der, format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new LitebootError('BAD_KEY', `${what}: the private key does not parse (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Encrypted PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`): OpenSSL 3 writes PBES2 with PBKDF2
 * (hmacWithSHA256, 2048 iterations) and AES-256-CBC (RFC 8018 §6.2).
 */
export function encryptedPrivateKeyToPem(key: KeyObject, passphrase: string): string {
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** SEC1 `EC PRIVATE KEY` PEM for EC keys (as the original wrote them), PKCS#8 for others. */
export function privateKeyToPem(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ec') return key.export({ type: 'sec1', format: 'pem' }) as string;
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** SEC1 DER of an EC private key (what `openssl ec -outform DER` prints). */
export function privateKeyToSec1Der(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ec') throw new LitebootError('BAD_KEY', 'only EC keys have a SEC1 encoding');
  return key.export({ type: 'sec1', format: 'der' }) as Buffer;
}

export function publicKeyOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7). */
export function spkiDer(key: KeyObject): Buffer {
  return publicKeyOf(key).export({ type: 'spki', format: 'der' }) as Buffer;
}

export function publicKeyToPem(key: KeyObject): string {
  return toPem('PUBLIC KEY', spkiDer(key));
}

// SubjectPublicKeyInfo prefixes of uncompressed EC keys (RFC 5480 §2): AlgorithmIdentifier
// { id-ecPublicKey, namedCurve } and the BIT STRING header, then 04 || X || Y.
const EC_SPKI: { prefix: Buffer; crv: string; size: number }[] = [
  { prefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), crv: 'P-256', size: 32 },
  { prefix: Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'), crv: 'P-384', size: 48 },
];

/** The curve of an uncompressed P-256 or P-384 SubjectPublicKeyInfo, read from its bytes alone; else undefined. */
export function ecCurveOfSpki(der: Uint8Array): 'P-256' | 'P-384' | undefined {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  for (const { prefix, crv, size } of EC_SPKI) {
    if (buf.length === prefix.length + 1 + 2 * size && buf.subarray(0, prefix.length).equals(prefix) && buf[prefix.length] === 4) return crv as 'P-256' | 'P-384';
  }
  return undefined;
}

export function publicKeyFromSpki(der: Uint8Array): KeyObject {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  try {
    // OpenSSL 3's SPKI decoder costs ~90 µs a key; importing the same point as a JWK costs half,
    // and every enrolment imports one.
    for (const { prefix, crv, size } of EC_SPKI) {
      if (buf.length === prefix.length + 1 + 2 * size && buf.subarray(0, prefix.length).equals(prefix) && buf[prefix.length] === 4) {
        const x = buf.subarray(prefix.length + 1, prefix.length + 1 + size).toString('base64url');
        const y = buf.subarray(prefix.length + 1 + size).toString('base64url');
        return createPublicKey({ key: { kty: 'EC', crv, x, y }, format: 'jwk' });
      }
    }
    return createPublicKey({ key: Buffer.from(buf), format: 'der', type: 'spki' });
  } catch (e) {
    // OpenSSL's text (`error:03000072:...`) stays in the cause, for the log: it is no message for a client.
    throw new LitebootError('UNSUPPORTED_KEY', 'the public key does not parse, or is of a type liteboot does not know', { cause: e });
  }
}

export interface KeyDescription {
  /** 'EC', 'Ed25519', 'RSA', ... */
  type: string;
  /** Curve name for EC keys ('P-256'); undefined otherwise. */
  curve?: string;
  bits: number;
  /** e.g. 'EC P-256', 'RSA 2048', 'Ed25519'. */
  label: string;
}

const CURVE_BITS: Record<string, number> = { 'prime256v1': 256, 'secp384r1': 384, 'secp521r1': 521, 'P-256': 256, 'P-384': 384, 'P-521': 521 };
const CURVE_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

export function describeKey(key: KeyObject): KeyDescription {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const raw = d.namedCurve ?? 'unknown';
      const curve = CURVE_NAMES[raw] ?? raw;
      return { type: 'EC', curve, bits: CURVE_BITS[raw] ?? 0, label: `EC ${curve}` };
    }
    case 'rsa':
      return { type: 'RSA', bits: d.modulusLength ?? 0, label: `RSA ${d.modulusLength ?? '?'}` };
    case 'rsa-pss':
      return { type: 'RSA-PSS', bits: d.modulusLength ?? 0, label: `RSA-PSS ${d.modulusLength ?? '?'}` };
    case 'ed25519':
      return { type: 'Ed25519', bits: 256, label: 'Ed25519' };
    case 'ed448':
      return { type: 'Ed448', bits: 456, label: 'Ed448' };
    default:
      return { type: String(key.asymmetricKeyType), bits: 0, label: String(key.asymmetricKeyType) };
  }
}

/** Do these two keys form a pair? Compares public halves. */
export function keysMatch(privateKey: KeyObject, publicKey: KeyObject): boolean {
  return spkiDer(privateKey).equals(spkiDer(publicKey));
}
