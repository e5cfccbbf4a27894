import { buildOcspResponse, certIdMatchesIssuer, issuerHashes, ocspErrorResponse, parseOcspRequest, type IssuerHashes, type OcspCertStatus, type OcspRequest } from '../asn1/ocsp.js';
import type { Signer } from '../asn1/signer.js';
import { isLitebootError } from '../errors.js';
import type { Issuer } from './profiles.js';

/** What the responder needs to know of a serial: revoked (when, why), issued by us, or neither. */
export type SerialStatus = (serial: bigint) => Promise<OcspCertStatus>;

export interface OcspResponderOptions {
  issuer: Issuer;
  status: SerialStatus;
  clock: () => Date;
  /** How long a good or revoked answer may be relied on: the current CRL's nextUpdate. */
  nextUpdate: () => Date | undefined;
  /**
   * A delegated responder (RFC 6960 §4.2.2.2: EKU id-kp-OCSPSigning, issued by the CA): its
   * signer, key id and certificate, sent in `certs`. The CA key signs when absent.
   */
  delegate?: { signer: Signer; keyId: Uint8Array; certDer: Uint8Array };
}

/**
 * OCSP (RFC 6960) for the CA's certificates: `good`, `revoked` (time and reason) or `unknown` (a
 * serial the CA never issued), the nonce echoed (RFC 8954), several CertIDs answered together. A
 * request that does not parse gets malformedRequest, one for another issuer unauthorized, and one
 * that cannot be answered because the database is unreachable tryLater (RFC 6960 §4.2.1: a bare
 * OCSPResponse, no responseBytes).
 */
export class OcspResponder {
  private readonly hashes: IssuerHashes;

  constructor(private readonly o: OcspResponderOptions) {
    this.hashes = issuerHashes(o.issuer.subjectDer, o.issuer.spki);
  }

  async respond(der: Uint8Array): Promise<Buffer> {
    let req: OcspRequest;
    try {
      req = parseOcspRequest(der);
    } catch {
      return ocspErrorResponse('malformedRequest');
    }
    // RFC 6960 §4.4: a critical extension we do not understand cannot be honoured.
    if (req.unsupportedCriticalExtensions.length > 0) return ocspErrorResponse('malformedRequest');
    if (!req.requests.every((id) => certIdMatchesIssuer(id, this.hashes))) return ocspErrorResponse('unauthorized');
    const now = this.o.clock();
    const nextUpdate = this.o.nextUpdate();
    let responses;
    try {
      responses = await Promise.all(
        req.requests.map(async (id) => ({ certId: id.der, thisUpdate: now, nextUpdate, ...(id.serial > 0n ? await this.o.status(id.serial) : { status: 'unknown' as const }) })),
      );
    } catch (e) {
      // No answer rather than a wrong one: the relying party asks again (or falls back to the CRL).
      if (isLitebootError(e) && e.code === 'DB_UNAVAILABLE') return ocspErrorResponse('tryLater');
      throw e;
    }
    const d = this.o.delegate;
    return buildOcspResponse(
      { responderKeyId: d ? d.keyId : this.hashes.keyHashes.sha1, producedAt: now, responses, nonce: req.nonce, certs: d ? [d.certDer] : undefined },
      d ? d.signer : this.o.issuer.signer,
    );
  }
}
