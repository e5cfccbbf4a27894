import { buildCrl, encodeCrlEntry } from '../asn1/crl.js';
import { keyIdentifier } from '../asn1/extensions.js';
import { toPem } from '../asn1/pem.js';
import { LitebootError } from '../errors.js';
import type { Store } from '../store/types.js';
import { acceptCsr, type AcceptedRequest, type IssuancePolicy } from './policy.js';
import { BOOTSTRAP_OU, DAY_MS, deviceCertificate, OPERATOR_OU, validityEnd, type Issuer } from './profiles.js';
import type { TimestampSerials } from './serial-source.js';
import { canonicalUuid } from './uuid.js';

/** Who is calling, decided from the client certificate that passed TLS. */
export type Role = 'bootstrap' | 'operator' | 'device' | 'none';

export interface Caller {
  role: Role;
  /** The certificate's CN (the device id for a device). */
  cn: string;
  serial: bigint;
  /** For logs and the `issued_by` column: `bootstrap`, `operator:alice`, `device:<serial>`. */
  label: string;
}

/** What the TLS layer tells the authority about a verified client certificate. */
export interface PeerCertificate {
  serial: bigint;
  cn: string;
  ous: readonly string[];
  notAfter: Date;
}

export interface Issued {
  der: Buffer;
  serial: bigint;
  deviceId: string;
}

export interface AuthorityOptions {
  store: Store;
  issuer: Issuer;
  policy: IssuancePolicy;
  /** Validity of device certificates in days (default 365), never beyond the CA. */
  deviceDays: number;
  /** Whether new devices await cloud registration (`pending`) or have no provider (`none`). */
  registration: 'pending' | 'none';
  serials: TimestampSerials;
  clock: () => Date;
}

/** RFC 5280 §5.3.1 CRLReason values (7 is unused). */
const REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);

/**
 * The certificate authority's use cases, independent of HTTP: enrolment, key update,
 * revocation, status, and who may do what. The server decodes, calls one method, encodes.
 */
export class Authority {
  private readonly issueListeners: ((deviceId: string) => void)[] = [];
  private crlNumber = 0n;
  /** Every revoked certificate, loaded from the store once and kept up to date by revoke(). */
  private readonly revoked = new Map<bigint, { revokedAt?: Date; reason?: number }>();

  /** Loads the revoked serials (call once before serving; see isRevoked). */
  async loadRevocations(): Promise<void> {
    for (const r of await this.o.store.revocations()) this.revoked.set(r.serial, { revokedAt: r.revokedAt, reason: r.reason });
  }

  /** Is this serial revoked? Synchronous, for the TLS listeners' check right after a handshake. */
  isRevoked(serial: bigint): boolean {
    return this.revoked.has(serial);
  }

  constructor(private readonly o: AuthorityOptions) {}

  /**
   * Classifies a client certificate (API.md "Who may call what"). A certificate the CA issued
   * through the API (it is in the store) is a device certificate whatever its subject says: a
   * database from the original can hold device certificates with the bootstrap OU.
   */
  async identify(peer: PeerCertificate): Promise<Caller> {
    if (peer.notAfter.getTime() < this.o.clock().getTime()) throw new LitebootError('FORBIDDEN', 'your certificate has expired');
    const rec = await this.o.store.findBySerial(peer.serial);
    if (rec) {
      if (!rec.valid) throw new LitebootError('FORBIDDEN', 'your certificate has been revoked');
      return { role: 'device', cn: rec.deviceId, serial: peer.serial, label: `device:${peer.serial}` };
    }
    if (peer.ous.includes(OPERATOR_OU)) return { role: 'operator', cn: peer.cn, serial: peer.serial, label: `operator:${peer.cn}` };
    if (peer.ous.includes(BOOTSTRAP_OU)) return { role: 'bootstrap', cn: peer.cn, serial: peer.serial, label: 'bootstrap' };
    return { role: 'none', cn: peer.cn, serial: peer.serial, label: `unknown:${peer.cn}` };
  }

  private async issue(req: AcceptedRequest, caller: Caller): Promise<Issued> {
    const notBefore = this.o.clock();
    const serial = this.o.serials.next();
    const keyId = keyIdentifier(req.csr.spki); // once: the certificate's SKI and the store's keyid
    const der = await deviceCertificate(this.o.issuer, { subject: req.subject, serial, publicKey: req.csr.spki, keyId, notBefore, days: this.o.deviceDays });
    // Recorded (and fsync'd) before anyone sees it: a certificate handed out is never lost.
    await this.o.store.recordIssued({
      deviceId: req.deviceId,
      name: req.ou,
      serial,
      keyId,
      der,
      notBefore,
      notAfter: validityEnd(notBefore, this.o.deviceDays, this.o.issuer.notAfter),
      issuedBy: caller.label,
      issuedAt: notBefore,
      registration: this.o.registration,
    });
    for (const l of this.issueListeners) l(req.deviceId);
    return { der, serial, deviceId: req.deviceId };
  }

  /** Called after each certificate is recorded (cloud registration listens). */
  onIssued(listener: (deviceId: string) => void): void {
    this.issueListeners.push(listener);
  }

  /** cr and p10cr: a new device certificate for a CSR that passes policy. */
  async enrol(csrDer: Uint8Array, caller: Caller): Promise<Issued> {
    return this.issue(await acceptCsr(csrDer, this.o.policy), caller);
  }

  /**
   * kur: a replacement for a device's certificate. The CSR's CN must be the caller's; the old
   * certificate stays valid (a device that loses power before storing the new key must still
   * be able to connect).
   */
  async keyUpdate(csrDer: Uint8Array, caller: Caller): Promise<Issued> {
    const req = await acceptCsr(csrDer, this.o.policy);
    if (caller.role !== 'device' || req.deviceId.toLowerCase() !== caller.cn.toLowerCase()) {
      throw new LitebootError('FORBIDDEN', `the CSR's CN "${req.deviceId}" is not the CN of your certificate`);
    }
    return this.issue(req, caller);
  }

  /** krr: a device may revoke its own certificates, an operator any. Revoking twice is not an error. */
  async revoke(serial: bigint, reason: number, caller: Caller): Promise<void> {
    if (!REASONS.has(reason)) throw new LitebootError('BAD_REASON', `revocation reason ${reason} is not an RFC 5280 CRLReason code`);
    const rec = await this.o.store.findBySerial(serial);
    if (!rec) throw new LitebootError('UNKNOWN_SERIAL', 'invalid serial number');
    if (caller.role === 'device' && rec.deviceId.toLowerCase() !== caller.cn.toLowerCase()) {
      throw new LitebootError('FORBIDDEN', 'a device may revoke only its own certificates');
    }
    if (caller.role !== 'device' && caller.role !== 'operator') throw new LitebootError('FORBIDDEN', 'this certificate may not revoke');
    const at = this.o.clock();
    if (await this.o.store.revoke(serial, reason, at)) {
      this.revoked.set(serial, { revokedAt: at, reason });
    }
  }

  /** cs: true while valid, false once revoked; UNKNOWN_SERIAL for a serial never issued. */
  async certificateStatus(serial: bigint): Promise<boolean> {
    const rec = await this.o.store.findBySerial(serial);
    if (!rec) throw new LitebootError('UNKNOWN_SERIAL', 'invalid serial number');
    return rec.valid;
  }

  /** ds: the device's unrevoked serials, oldest first. */
  async deviceSerials(uuidText: string): Promise<bigint[]> {
    const id = canonicalUuid(uuidText);
    if (!id) throw new LitebootError('BAD_UUID', 'need a valid UUID');
    return this.o.store.validSerials(id);
  }

  /** cc: the certificate as PEM; a revoked serial answers like an unknown one. */
  async certificateCopy(serial: bigint): Promise<string> {
    const rec = await this.o.store.findBySerial(serial);
    if (!rec || !rec.valid) throw new LitebootError('UNKNOWN_SERIAL', 'invalid serial number');
    return toPem('CERTIFICATE', rec.der);
  }

  /** The current CRL (RFC 5280 §5), valid for `days` (for a CRL endpoint; see loadRevocations). */
  async crl(days = 7): Promise<Buffer> {
    const now = this.o.clock();
    const nowNumber = BigInt(now.getTime());
    this.crlNumber = nowNumber > this.crlNumber ? nowNumber : this.crlNumber + 1n;
    return buildCrl(
      {
        issuerDer: this.o.issuer.subjectDer,
        issuerKeyId: this.o.issuer.keyId,
        thisUpdate: now,
        nextUpdate: validityEnd(now, days, new Date(Math.max(this.o.issuer.notAfter.getTime(), now.getTime() + DAY_MS))),
        number: this.crlNumber,
        // Rows the original marked invalid carry no time: date them now.
        entries: [...this.revoked].map(([serial, r]) => encodeCrlEntry({ serial, revokedAt: r.revokedAt ?? now, reason: r.reason })),
      },
      this.o.issuer.signer,
    );
  }
}
