import { createHash } from 'node:crypto';
import { LitebootError } from '../errors.js';
import { content, contextConstructed, decodeOid, DerReader, octetString, oid, raw, readTlv, sequence, TAG, tlv, type Tlv } from './der.js';
import { OID } from './oids.js';
import { algorithmDer, type Signer } from './signer.js';

/**
 * The OCSP codec (RFC 6960): parse an OCSPRequest, build a signed BasicOCSPResponse, and the
 * fixed error responses. Hand-written over der.ts because the responder answers on the hot path.
 * Time is an input; nothing here reads the clock.
 */

/** How many certificates one OCSPRequest may ask about; more is refused as malformed. */
export const MAX_OCSP_REQUESTS = 64;
/** RFC 9654 §2.1 (which obsoletes RFC 8954's 32): a nonce is 1 to 128 octets, else malformedRequest. */
export const MAX_NONCE_LENGTH = 128;
const MAX_SERIAL_LENGTH = 64;

export type OcspHash = 'sha1' | 'sha256';

/** CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber } (RFC 6960 §4.1.1) */
export interface OcspCertId {
  /** null for a hash other than SHA-1 or SHA-256 (see `hashOid`): no issuer matches it. */
  hash: OcspHash | null;
  hashOid: string;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Two's complement as sent; may be zero or negative if the client says so. */
  serial: bigint;
  /** The CertID's DER as received, to echo in the SingleResponse byte for byte. */
  der: Buffer;
}

/** Buffers in a parsed request are views into the input, not copies. */
export interface OcspRequest {
  /** One per Request in requestList, in order; at least one. */
  requests: OcspCertId[];
  /**
   * The nonce extension's extnValue content exactly as received (usually an OCTET STRING TLV,
   * RFC 6960 §4.4.1 / RFC 9654 §2.1; some clients send the bare bytes). Echo it unchanged.
   */
  nonce?: Buffer;
  /** An optionalSignature was present (RFC 6960 §4.1.2). It is not verified here. */
  signed: boolean;
  /** OIDs of critical request or single-request extensions this codec does not know (RFC 6960 §4.4). */
  unsupportedCriticalExtensions: string[];
}

const W = 'the OCSP request';

function bad(why: string): LitebootError {
  return new LitebootError('BAD_DER', `${W} is not valid: ${why}`);
}

const oidContent = (dotted: string): Buffer => oid(dotted).subarray(2);
const SHA1 = oidContent(OID.sha1);
const SHA256 = oidContent(OID.sha256);
const NONCE = oidContent(OID.ocspNonce);
const HASH_LENGTH: Record<OcspHash, number> = { sha1: 20, sha256: 32 };

/** The only child of an EXPLICIT [n] wrapper. */
function explicitChild(buf: Uint8Array, t: Tlv, tag?: number): Tlv {
  const r = DerReader.of(buf, t, W);
  const child = r.next(tag);
  r.end();
  return child;
}

/** INTEGER content as a signed bigint, refusing non-minimal encodings (X.690 §8.3.2). */
function readInteger(buf: Uint8Array, t: Tlv, maxLength: number): bigint {
  const len = t.end - t.contentStart;
  if (len === 0) throw bad('empty INTEGER');
  if (len > maxLength) throw bad(`INTEGER longer than ${maxLength} octets`);
  const b0 = buf[t.contentStart]!;
  if (len > 1) {
    const b1 = buf[t.contentStart + 1]!;
    if ((b0 === 0 && !(b1 & 0x80)) || (b0 === 0xff && b1 & 0x80)) throw bad('non-minimal INTEGER');
  }
  let v = BigInt('0x' + content(buf, t).toString('hex'));
  if (b0 & 0x80) v -= 1n << BigInt(len * 8);
  return v;
}

/** CertID (RFC 6960 §4.1.1). AlgorithmIdentifier parameters: NULL or absent (RFC 5754 §2 allows both). */
function readCertId(buf: Uint8Array, t: Tlv): OcspCertId {
  const r = DerReader.of(buf, t, W);
  const alg = DerReader.of(buf, r.next(TAG.SEQUENCE), W);
  const algOid = content(buf, alg.next(TAG.OID));
  if (!alg.done) {
    const p = alg.next(TAG.NULL);
    if (p.end !== p.contentStart) throw bad('NULL with content');
  }
  alg.end();
  const nameHash = content(buf, r.next(TAG.OCTET_STRING));
  const keyHash = content(buf, r.next(TAG.OCTET_STRING));
  const serial = readInteger(buf, r.next(TAG.INTEGER), MAX_SERIAL_LENGTH);
  r.end();
  const hash: OcspHash | null = algOid.equals(SHA1) ? 'sha1' : algOid.equals(SHA256) ? 'sha256' : null;
  if (hash && (nameHash.length !== HASH_LENGTH[hash] || keyHash.length !== HASH_LENGTH[hash])) {
    throw bad(`a ${hash} CertID hash is not ${HASH_LENGTH[hash]} octets`);
  }
  return {
    hash,
    hashOid: hash === 'sha1' ? OID.sha1 : hash === 'sha256' ? OID.sha256 : decodeOid(algOid, W),
    issuerNameHash: nameHash,
    issuerKeyHash: keyHash,
    serial,
    der: raw(buf, t),
  };
}

/**
 * Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1). Calls `onNonce` with the
 * nonce's extnValue content; records unknown critical ones. An explicit `critical FALSE` (a DEFAULT
 * that DER omits) is tolerated: clients that write it mean no harm.
 */
function readExtensions(buf: Uint8Array, t: Tlv, out: OcspRequest, nonceAllowed: boolean): void {
  const list = DerReader.of(buf, t, W);
  if (list.done) throw bad('empty Extensions');
  const seen = new Set<string>();
  while (!list.done) {
    const e = DerReader.of(buf, list.next(TAG.SEQUENCE), W);
    const id = content(buf, e.next(TAG.OID));
    let v = e.next();
    let critical = false;
    if (v.tag === TAG.BOOLEAN) {
      if (v.end - v.contentStart !== 1 || (buf[v.contentStart] !== 0 && buf[v.contentStart] !== 0xff)) throw bad('bad BOOLEAN');
      critical = buf[v.contentStart] === 0xff;
      v = e.next();
    }
    if (v.tag !== TAG.OCTET_STRING) throw bad('extnValue is not an OCTET STRING');
    e.end();
    const key = id.toString('hex');
    // RFC 5280 §4.2: at most one instance of an extension.
    if (seen.has(key)) throw bad('an extension appears twice');
    seen.add(key);
    if (nonceAllowed && id.equals(NONCE)) {
      const value = content(buf, v);
      const n = nonceLength(value);
      if (n < 1 || n > MAX_NONCE_LENGTH) throw bad(`the nonce must be 1 to ${MAX_NONCE_LENGTH} octets`);
      out.nonce = value;
    } else if (critical) {
      out.unsupportedCriticalExtensions.push(decodeOid(id, W));
    }
  }
}

/** Nonce ::= OCTET STRING (RFC 9654 §2.1); a bare value (no inner OCTET STRING) counts as itself. */
function nonceLength(value: Buffer): number {
  if (value.length >= 2 && value[0] === TAG.OCTET_STRING) {
    try {
      const inner = readTlv(value, 0, value.length, W);
      if (inner.end === value.length) return inner.end - inner.contentStart;
    } catch {
      // not a well-formed OCTET STRING: a bare nonce that happens to start with 0x04
    }
  }
  return value.length;
}

/**
 * OCSPRequest (RFC 6960 §4.1.1):
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *                             requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 *   Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 * Throws BAD_DER on anything malformed, on trailing bytes, and on more than `maxRequests` requests.
 */
export function parseOcspRequest(der: Uint8Array, maxRequests = MAX_OCSP_REQUESTS): OcspRequest {
  const out: OcspRequest = { requests: [], signed: false, unsupportedCriticalExtensions: [] };
  const top = new DerReader(der, W);
  const outer = DerReader.of(der, top.next(TAG.SEQUENCE), W);
  top.end();
  const tbs = DerReader.of(der, outer.next(TAG.SEQUENCE), W);
  if (!outer.done) {
    // Signature ::= SEQUENCE { signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
    const sig = DerReader.of(der, explicitChild(der, outer.next(0xa0), TAG.SEQUENCE), W);
    sig.next(TAG.SEQUENCE);
    sig.next(TAG.BIT_STRING);
    if (!sig.done) explicitChild(der, sig.next(0xa0), TAG.SEQUENCE);
    sig.end();
    out.signed = true;
  }
  outer.end();

  let t = tbs.next();
  if (t.tag === 0xa0) {
    // Only v1 exists; DER omits the DEFAULT but some encoders write it.
    if (readInteger(der, explicitChild(der, t, TAG.INTEGER), 1) !== 0n) throw bad('unsupported version');
    t = tbs.next();
  }
  if (t.tag === 0xa1) {
    explicitChild(der, t);
    t = tbs.next();
  }
  if (t.tag !== TAG.SEQUENCE) throw bad('no requestList');
  const list = DerReader.of(der, t, W);
  while (!list.done) {
    if (out.requests.length >= maxRequests) {
      throw new LitebootError('BAD_DER', `${W} asks about more than ${maxRequests} certificates`);
    }
    const req = DerReader.of(der, list.next(TAG.SEQUENCE), W);
    out.requests.push(readCertId(der, req.next(TAG.SEQUENCE)));
    if (!req.done) readExtensions(der, explicitChild(der, req.next(0xa0), TAG.SEQUENCE), out, false);
    req.end();
  }
  if (out.requests.length === 0) throw bad('the requestList is empty');
  if (!tbs.done) readExtensions(der, explicitChild(der, tbs.next(0xa2), TAG.SEQUENCE), out, true);
  tbs.end();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Matching a CertID to an issuer

/** The CertID hashes of one issuer, computed once per CA. */
export interface IssuerHashes {
  nameHashes: Record<OcspHash, Buffer>;
  keyHashes: Record<OcspHash, Buffer>;
}

/**
 * RFC 6960 §4.1.1: issuerNameHash is the hash of the issuer's DER-encoded subject Name;
 * issuerKeyHash the hash of its subjectPublicKey BIT STRING value (without the unused-bits octet).
 */
export function issuerHashes(subjectDer: Uint8Array, spki: Uint8Array): IssuerHashes {
  const name = readTlv(subjectDer, 0, subjectDer.length, 'the issuer name');
  if (name.tag !== TAG.SEQUENCE || name.end !== subjectDer.length) {
    throw new LitebootError('BAD_DER', 'the issuer name is not one DER SEQUENCE');
  }
  const r = new DerReader(spki, 'the issuer public key');
  const keyInfo = DerReader.of(spki, r.next(TAG.SEQUENCE), 'the issuer public key');
  r.end();
  keyInfo.next(TAG.SEQUENCE);
  const bits = keyInfo.next(TAG.BIT_STRING);
  keyInfo.end();
  if (bits.end === bits.contentStart) throw new LitebootError('BAD_DER', 'the issuer public key is empty');
  const key = spki.subarray(bits.contentStart + 1, bits.end);
  const h = (alg: OcspHash, data: Uint8Array) => createHash(alg).update(data).digest();
  return {
    nameHashes: { sha1: h('sha1', subjectDer), sha256: h('sha256', subjectDer) },
    keyHashes: { sha1: h('sha1', key), sha256: h('sha256', key) },
  };
}

/** Does the CertID name this issuer? A hash other than SHA-1/SHA-256 never matches. */
export function certIdMatchesIssuer(id: OcspCertId, issuer: IssuerHashes): boolean {
  if (!id.hash) return false;
  return id.issuerKeyHash.equals(issuer.keyHashes[id.hash]) && id.issuerNameHash.equals(issuer.nameHashes[id.hash]);
}

// ---------------------------------------------------------------------------------------------
// Responses

/** CertStatus (RFC 6960 §4.2.1); `reason` is a CRLReason (RFC 5280 §5.3.1). */
export type OcspCertStatus =
  | { status: 'good' }
  | { status: 'revoked'; revokedAt: Date; reason?: number }
  | { status: 'unknown' };

export type OcspSingleResponse = OcspCertStatus & {
  /** The request's CertID DER (OcspCertId.der), echoed so the client matches it exactly. */
  certId: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
};

export interface OcspResponseTemplate {
  /**
   * ResponderID byKey, KeyHash (RFC 6960 §4.2.1): SHA-1 of the signer's subjectPublicKey bits,
   * which is its keyIdentifier (extensions.ts) and, when the CA signs, its keyHashes.sha1.
   */
  responderKeyId: Uint8Array;
  producedAt: Date;
  responses: readonly OcspSingleResponse[];
  /** OcspRequest.nonce, echoed exactly as responseExtensions (RFC 6960 §4.4.1). */
  nonce?: Uint8Array;
  /** Certificates for `certs`: a delegated responder's certificate (RFC 6960 §4.2.2.2). */
  certs?: readonly Uint8Array[];
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/**
 * GeneralizedTime, always: RFC 6960 §4.2.1 types every OCSP time so, unlike X.509's UTCTime
 * before 2050. RFC 5280 §4.1.2.5.2 form: YYYYMMDDHHMMSSZ, whole seconds.
 */
export function generalizedTime(d: Date): Buffer {
  const y = d.getUTCFullYear();
  if (!(y >= 0 && y <= 9999)) throw new LitebootError('BAD_DER', 'a time outside years 0000-9999 cannot be encoded');
  const s = `${String(y).padStart(4, '0')}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(s, 'latin1'));
}

const GOOD = Buffer.from([0x80, 0]); // good [0] IMPLICIT NULL
const UNKNOWN = Buffer.from([0x82, 0]); // unknown [2] IMPLICIT UnknownInfo (NULL)
const VALID_REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]); // RFC 5280 §5.3.1: 7 is not used

function certStatus(s: OcspCertStatus): Buffer {
  if (s.status === 'good') return GOOD;
  if (s.status === 'unknown') return UNKNOWN;
  if (s.reason !== undefined && !VALID_REASONS.has(s.reason)) {
    throw new LitebootError('BAD_REASON', `${s.reason} is not a CRLReason`);
  }
  // revoked [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }.
  // unspecified (0) is left out, as the CRL leaves it out (RFC 5280 §5.3.1), so both say the same.
  return tlv(
    0xa1,
    generalizedTime(s.revokedAt),
    ...(s.reason ? [contextConstructed(0, tlv(0x0a, Buffer.from([s.reason])))] : []),
  );
}

/** SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] EXPLICIT OPTIONAL } */
function singleResponse(r: OcspSingleResponse): Buffer {
  return sequence(
    r.certId,
    certStatus(r),
    generalizedTime(r.thisUpdate),
    ...(r.nextUpdate ? [contextConstructed(0, generalizedTime(r.nextUpdate))] : []),
  );
}

const NONCE_EXTENSION_ID = oid(OID.ocspNonce);
const BASIC_TYPE = oid(OID.ocspBasic);
const SUCCESSFUL = Buffer.from([0x0a, 1, 0]); // responseStatus successful (0)

/**
 * A successful OCSPResponse carrying a signed BasicOCSPResponse (RFC 6960 §4.2.1), DER:
 *   OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT { id-pkix-ocsp-basic, OCTET STRING } }
 *   BasicOCSPResponse ::= SEQUENCE { tbsResponseData, signatureAlgorithm, signature BIT STRING, certs [0] EXPLICIT OPTIONAL }
 *   ResponseData ::= SEQUENCE { version (v1, omitted), responderID byKey [2] EXPLICIT, producedAt,
 *                               responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT OPTIONAL }
 */
export async function buildOcspResponse(t: OcspResponseTemplate, signer: Signer): Promise<Buffer> {
  if (t.responderKeyId.length !== 20) throw new LitebootError('INTERNAL', 'the OCSP responder key id must be a 20-octet SHA-1 hash');
  const sigAlg = algorithmDer(signer.algorithm);
  const tbs = sequence(
    contextConstructed(2, octetString(t.responderKeyId)),
    generalizedTime(t.producedAt),
    sequence(...t.responses.map(singleResponse)),
    ...(t.nonce ? [contextConstructed(1, sequence(sequence(NONCE_EXTENSION_ID, octetString(t.nonce))))] : []),
  );
  const certs = t.certs?.length ? contextConstructed(0, sequence(...t.certs)) : EMPTY;
  const sig = await signer.sign(tbs);
  // The five wrappers around the signed part are written as headers only, so the response is
  // copied once rather than once per level.
  const bitHead = header(TAG.BIT_STRING, sig.length + 1);
  const basicLen = tbs.length + sigAlg.length + bitHead.length + 1 + sig.length + certs.length;
  const basicHead = header(TAG.SEQUENCE, basicLen);
  const octetHead = header(TAG.OCTET_STRING, basicHead.length + basicLen);
  const bytesLen = BASIC_TYPE.length + octetHead.length + basicHead.length + basicLen;
  const bytesHead = header(TAG.SEQUENCE, bytesLen);
  const explicitHead = header(0xa0, bytesHead.length + bytesLen);
  const outerHead = header(TAG.SEQUENCE, SUCCESSFUL.length + explicitHead.length + bytesHead.length + bytesLen);
  return Buffer.concat([outerHead, SUCCESSFUL, explicitHead, bytesHead, BASIC_TYPE, octetHead, basicHead, tbs, sigAlg, bitHead, NO_UNUSED_BITS, sig, certs]);
}

const EMPTY = Buffer.alloc(0);
const NO_UNUSED_BITS = Buffer.from([0]);

/** A TLV header for `len` content octets: definite, minimal length (X.690 §10.1). */
function header(tag: number, len: number): Buffer {
  if (len < 0x80) return Buffer.from([tag, len]);
  if (len < 0x100) return Buffer.from([tag, 0x81, len]);
  if (len < 0x10000) return Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  if (len < 0x1000000) return Buffer.from([tag, 0x83, len >> 16, (len >> 8) & 0xff, len & 0xff]);
  throw new LitebootError('INTERNAL', 'an OCSP response over 16 MiB');
}

export type OcspErrorStatus = 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized';

// OCSPResponseStatus (RFC 6960 §4.2.1); 4 is not used.
const ERROR_STATUS: Record<OcspErrorStatus, number> = {
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
};

/** An unsuccessful OCSPResponse: the status alone, no responseBytes (RFC 6960 §4.2.1). */
export function ocspErrorResponse(status: OcspErrorStatus): Buffer {
  if (!Object.hasOwn(ERROR_STATUS, status)) throw new LitebootError('INTERNAL', `${String(status)} is not an OCSP error status`);
  return Buffer.from([TAG.SEQUENCE, 3, 0x0a, 1, ERROR_STATUS[status]]);
}
