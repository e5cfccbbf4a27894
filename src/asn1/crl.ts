import { bitString, contextConstructed, integer, octetString, oid, sequence, TAG, time, tlv } from './der.js';
import { authorityKeyIdentifier } from './extensions.js';
import { algorithmDer, type Signer } from './signer.js';

export interface CrlEntry {
  serial: bigint;
  revokedAt: Date;
  /** RFC 5280 §5.3.1 CRLReason; 0 (unspecified) is left out, as §5.3.1 asks. */
  reason?: number;
}

export interface CrlTemplate {
  issuerDer: Uint8Array;
  issuerKeyId: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date;
  /** RFC 5280 §5.2.3: monotonically increasing. */
  number: bigint;
  /** Each the DER of one revokedCertificates entry (see encodeCrlEntry), so callers can cache them. */
  entries: readonly Uint8Array[];
}

const CRL_NUMBER = '2.5.29.20';
const REASON_CODE = '2.5.29.21';

/** One entry of revokedCertificates: serial, date, and the reasonCode extension when there is a reason. */
export function encodeCrlEntry(e: CrlEntry): Buffer {
  return sequence(
    integer(e.serial),
    time(e.revokedAt),
    ...(e.reason ? [sequence(sequence(oid(REASON_CODE), octetString(tlv(0x0a, Buffer.from([e.reason])))))] : []),
  );
}

/** An X.509 v2 CRL (RFC 5280 §5.1), DER. */
export async function buildCrl(t: CrlTemplate, signer: Signer): Promise<Buffer> {
  const sigAlg = algorithmDer(signer.algorithm);
  const revoked = t.entries;
  const tbs = sequence(
    tlv(TAG.INTEGER, Buffer.from([1])), // v2
    sigAlg,
    t.issuerDer,
    time(t.thisUpdate),
    time(t.nextUpdate),
    // One concatenation, not a spread: 100k entries as arguments overflow the call stack.
    ...(revoked.length > 0 ? [sequence(Buffer.concat(revoked))] : []),
    contextConstructed(0, sequence(authorityKeyIdentifier(t.issuerKeyId), sequence(oid(CRL_NUMBER), octetString(integer(t.number))))),
  );
  return sequence(tbs, sigAlg, bitString(await signer.sign(tbs)));
}
