import { LitebootError } from '../errors.js';
import { content, contextConstructed, decodeOid, DerReader, oid, raw, readTlv, sequence, set, setOf, TAG, tlv } from './der.js';

/** RFC 5652 §5.1 and §4: the content types of a certs-only message. */
const SIGNED_DATA = '1.2.840.113549.1.7.2';
const DATA = '1.2.840.113549.1.7.1';
const WHAT = 'the PKCS#7 certs-only message';

/**
 * A certs-only CMS SignedData (RFC 5652 §5, the degenerate case of RFC 7030 §4.1.3 and
 * §4.2.3): no content, no signers, only certificates. The bytes are those of
 * `openssl crl2pkcs7 -nocrl -certfile X.crt -outform DER`, except that several certificates go in
 * DER SET OF order (X.690 §11.6), where openssl keeps the order of its input file.
 *
 *   ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
 *   SignedData ::= SEQUENCE { version CMSVersion (1), digestAlgorithms SET OF (empty),
 *       encapContentInfo SEQUENCE { eContentType id-data }, certificates [0] IMPLICIT SET OF,
 *       signerInfos SET OF (empty) }
 */
export function certsOnly(certificates: readonly Uint8Array[]): Buffer {
  const signedData = sequence(
    tlv(TAG.INTEGER, Buffer.from([1])),
    set(),
    sequence(oid(DATA)),
    // [0] IMPLICIT SET OF: the SET's tag replaced, its DER member order kept.
    Buffer.concat([Buffer.from([0xa0]), setOf(certificates).subarray(1)]),
    set(),
  );
  return sequence(oid(SIGNED_DATA), contextConstructed(0, signedData));
}

/** The certificates (each a DER Certificate) of a certs-only SignedData, in the order they appear. */
export function parseCertsOnly(der: Uint8Array): Buffer[] {
  const outer = readTlv(der, 0, der.length, WHAT);
  if (outer.tag !== TAG.SEQUENCE || outer.end !== der.length) throw new LitebootError('BAD_DER', `${WHAT} is not one DER SEQUENCE`);
  const info = DerReader.of(der, outer, WHAT);
  if (decodeOid(content(der, info.next(TAG.OID)), WHAT) !== SIGNED_DATA) throw new LitebootError('BAD_DER', `${WHAT} is not a SignedData`);
  const explicit = DerReader.of(der, info.next(0xa0), WHAT);
  info.end();
  const sd = DerReader.of(der, explicit.next(TAG.SEQUENCE), WHAT);
  explicit.end();
  sd.next(TAG.INTEGER);
  sd.next(TAG.SET); // digestAlgorithms
  sd.next(TAG.SEQUENCE); // encapContentInfo
  const certs: Buffer[] = [];
  let t = sd.next();
  if (t.tag === 0xa0) {
    const list = DerReader.of(der, t, WHAT);
    while (!list.done) certs.push(Buffer.from(raw(der, list.next(TAG.SEQUENCE))));
    t = sd.next();
  }
  if (t.tag === 0xa1) t = sd.next(); // crls, not used here
  if (t.tag !== TAG.SET) throw new LitebootError('BAD_DER', `${WHAT} has no signerInfos`);
  sd.end();
  return certs;
}
