import { parseCertificate } from '../asn1/certificate.js';
import { formatName } from '../asn1/name.js';
import { OID } from '../asn1/oids.js';
import { toPem } from '../asn1/pem.js';
import { LitebootError, type ErrorCode } from '../errors.js';
import { NO_METRICS, type Metrics } from '../metrics.js';
import { SerialTakenError, type CredentialKind, type Store } from '../store/types.js';
import { acceptCsr, type AcceptedRequest, type IssuancePolicy } from './policy.js';
import type { OcspCertStatus } from '../asn1/ocsp.js';
import type { AuditSink } from '../audit/audit-log.js';
import { CrlPublisher } from './crl-publisher.js';
import { BOOTSTRAP_OU, deviceCertificate, OPERATOR_OU, revocationInfo, validityEnd, type Issuer } from './profiles.js';
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
  /** The certificate's DER, so that a bootstrap or operator credential seen first here can be recorded. */
  der?: Uint8Array;
}

/**
 * Who may enrol through the shared bootstrap credential, whose key is in every device's firmware
 * and so must be treated as public.
 */
export interface EnrolmentRules {
  /** `allowlist`: only device ids an operator added (`liteboot device allow`). */
  mode: 'open' | 'allowlist';
  /**
   * The original's first-come behaviour: a bootstrap enrolment may take an enrolled device id
   * with another key. Off unless `[server] allow_rebind = true`; it lets anyone holding the
   * bootstrap key impersonate any device.
   */
  allowRebind: boolean;
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
  enrolment?: EnrolmentRules;
  /** Validity of each CRL in days (default 7). */
  crlDays?: number;
  /**
   * Where relying parties find revocation (`[server] public_url`): a CRL distribution point and
   * OCSP/caIssuers URLs go into every device certificate. None when absent.
   */
  publicUrl?: string;
  /** Refusals an operator should hear about (an enrolment for a bound id with another key). */
  warn?: (message: string) => void;
  /** The audit trail: every issuance, revocation, credential and allowlist change, durable before the change. */
  audit?: AuditSink;
  /** Counters for monitoring (NO_METRICS when not given). */
  metrics?: Metrics;
}

/** How a certificate was asked for: the original API's cr, p10cr and kur, or EST (RFC 7030), for the audit trail. */
export type IssueVia = 'cr' | 'p10cr' | 'kur' | 'est';

/** Codes that are the CA's failure, not the caller's (the rest of the codes an issuance can end with are refusals). */
const SERVER_FAULTS = new Set<ErrorCode>(['INTERNAL', 'DB_IO', 'DB_READONLY', 'DB_CORRUPT', 'DB_LOCKED', 'DB_UNAVAILABLE', 'CA_EXPIRED']);

/**
 * RFC 5280 §5.3.1 CRLReason values a revocation may give: 7 is unused, and 8 (removeFromCRL)
 * belongs only in delta CRLs: OpenSSL reads such an entry as "not revoked", so a broker would
 * keep trusting the certificate.
 */
const REASONS = new Set([0, 1, 2, 3, 4, 5, 6, 9, 10]);

/** How often each server rereads the revocation feed whatever the notifications say (a NOTIFY lost with a dropped connection). */
export const RESYNC_MS = 5000;

/** Signing again with a fresh serial when another server took the one drawn (SerialTakenError): rare, so a few tries. */
const SERIAL_TRIES = 5;

/**
 * The certificate authority's use cases, independent of HTTP: enrolment, key update,
 * revocation, status, and who may do what. The server decodes, calls one method, encodes.
 */
export class Authority {
  private readonly issueListeners: ((deviceId: string) => void)[] = [];
  /** This process's current CRL. */
  readonly crls: CrlPublisher;
  /** The CRL distribution point and AIA extensions of every device certificate, encoded once. */
  private readonly revocationInfo: readonly Uint8Array[];
  /**
   * Every revoked certificate (devices and credentials), as of the store's revocation feed: loaded
   * at start, updated at once by this process's revoke(), and by other servers' revocations on the
   * same store through watch() (within milliseconds) and a resync every RESYNC_MS (a missed NOTIFY).
   * The TLS listeners read it synchronously; the REST API and OCSP also read the store's record.
   */
  private readonly revoked = new Map<bigint, { revokedAt?: Date; reason?: number }>();
  /** Where this process is in the store's revocation feed. */
  private cursor = 0n;
  /** The pull running now, and whether another was asked for meanwhile (calls coalesce). */
  private pulling: Promise<number> | undefined;
  private pullAgain: Promise<number> | undefined;
  private unwatch: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;

  /** Loads the revoked serials (call once before serving; see isRevoked), then follows the feed until stop(). */
  async loadRevocations(): Promise<void> {
    // The feed from its beginning holds every revocation, the original's undated rows included
    // (dated now: the migration dates them; a read-only copy may not have run it).
    await this.pull();
    await this.crls.rebuild();
  }

  /** Follows the other servers' revocations: the store's notifications, and a resync every `resyncMs` in case one was missed. */
  follow(resyncMs = RESYNC_MS): void {
    if (this.unwatch) return;
    let failing = false; // one line when the feed fails, one when it answers again (not one per resync)
    const sync = () =>
      void this.sync().then(
        () => {
          if (failing) this.o.warn?.('revocations: the store\'s revocation feed answers again; caught up');
          failing = false;
        },
        (e: Error) => {
          if (!failing) this.o.warn?.(`revocations: cannot read the store's revocation feed: ${e.message} (trying again every ${resyncMs / 1000} s; revocations made on other servers meanwhile are not yet enforced here)`);
          failing = true;
        },
      );
    this.unwatch = this.o.store.watch(sync);
    this.resyncTimer = setInterval(sync, resyncMs);
    this.resyncTimer.unref();
  }

  /** Stops following the feed. */
  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    clearInterval(this.resyncTimer);
    this.crls.stop();
  }

  /** Reads the feed and, when it brought a revocation this process did not know, publishes a new CRL. */
  async sync(): Promise<void> {
    // Dirty: a revocation this process knows is in no published CRL yet (its rebuild failed): try again.
    if ((await this.pull()) > 0 || this.crls.dirty) await this.crls.rebuild();
  }

  /** Reads the feed from the cursor into the revoked set and the CRL entries; returns how many serials were new. Calls coalesce. */
  private pull(): Promise<number> {
    this.pullAgain ??= (this.pulling ?? Promise.resolve(0)).catch(() => 0).then(() => {
      this.pullAgain = undefined;
      this.pulling = this.pullNow().finally(() => {
        this.pulling = undefined;
      });
      return this.pulling;
    });
    return this.pullAgain;
  }

  private async pullNow(): Promise<number> {
    const now = this.o.clock();
    let fresh = 0;
    for (;;) {
      const { items, cursor } = await this.o.store.revocationsSince(this.cursor);
      for (const r of items) if (this.remember(r.serial, r.revokedAt ?? now, r.reason)) fresh++;
      const moved = cursor > this.cursor;
      this.cursor = cursor > this.cursor ? cursor : this.cursor;
      if (items.length === 0 || !moved) return fresh;
    }
  }

  /** Adds a revocation to the set and the CRL's entries (not yet published); false if it was known. */
  private remember(serial: bigint, revokedAt: Date, reason: number | undefined): boolean {
    if (this.revoked.has(serial)) return false;
    this.revoked.set(serial, { revokedAt, reason });
    this.crls.add(serial, revokedAt, reason);
    return true;
  }

  /**
   * Records a bootstrap or operator credential the CA issued (from certs/ at start-up, or the
   * first time one connects), so that it can be revoked by serial. False if it was recorded
   * already (by this server or another on the same store).
   */
  async recordCredential(kind: CredentialKind, name: string, serial: bigint, der: Uint8Array): Promise<boolean> {
    if (await this.o.store.findCredential(serial)) return false;
    await this.o.audit?.append({ event: 'credential', serial: serial.toString(), kind, name });
    return this.o.store.recordCredential({ serial, kind, name, der, recordedAt: this.o.clock() });
  }

  /** Is this serial revoked? Synchronous, for the TLS listeners' check right after a handshake (see `revoked`). */
  isRevoked(serial: bigint): boolean {
    return this.revoked.has(serial);
  }

  private readonly metrics: Metrics;

  constructor(private readonly o: AuthorityOptions) {
    this.metrics = o.metrics ?? NO_METRICS;
    // Each CRL first reads the feed, after taking its number: a larger number never lists less.
    this.crls = new CrlPublisher({ issuer: o.issuer, store: o.store, clock: o.clock, days: o.crlDays ?? 7, catchUp: () => this.pull().then(() => {}) });
    this.revocationInfo = o.publicUrl ? revocationInfo(o.publicUrl) : [];
  }

  /**
   * Classifies a client certificate (API.md "Who may call what"). A certificate the CA issued
   * through the API (it is in the store) is a device certificate whatever its subject says: a
   * database from the original can hold device certificates with the bootstrap OU.
   */
  async identify(peer: PeerCertificate): Promise<Caller> {
    if (peer.notAfter.getTime() < this.o.clock().getTime()) throw new LitebootError('FORBIDDEN', 'your certificate has expired');
    if (this.revoked.has(peer.serial)) throw new LitebootError('FORBIDDEN', 'your certificate has been revoked');
    const rec = await this.o.store.findBySerial(peer.serial);
    if (rec) {
      if (!rec.valid) throw new LitebootError('FORBIDDEN', 'your certificate has been revoked');
      return { role: 'device', cn: rec.deviceId, serial: peer.serial, label: `device:${peer.serial}` };
    }
    const kind: CredentialKind | undefined = peer.ous.includes(OPERATOR_OU) ? 'operator' : peer.ous.includes(BOOTSTRAP_OU) ? 'bootstrap' : undefined;
    if (!kind) return { role: 'none', cn: peer.cn, serial: peer.serial, label: `unknown:${peer.cn}` };
    // Read from the store on every request (a primary-key lookup), not cached: a credential revoked
    // on another server is refused here at once, before this server's feed has caught up.
    const cred = await this.o.store.findCredential(peer.serial);
    if (cred && !cred.valid) throw new LitebootError('FORBIDDEN', 'your certificate has been revoked');
    if (!cred && peer.der) await this.recordCredential(kind, peer.cn, peer.serial, peer.der);
    return kind === 'operator'
      ? { role: 'operator', cn: peer.cn, serial: peer.serial, label: `operator:${peer.cn}` }
      : { role: 'bootstrap', cn: peer.cn, serial: peer.serial, label: `bootstrap:${peer.serial}` };
  }

  /**
   * Whether a caller identified earlier on the same connection still stands (unexpired, not
   * revoked): synchronous, for every request on a kept-alive connection; false means identify again.
   */
  stillStands(peer: PeerCertificate): boolean {
    return peer.notAfter.getTime() >= this.o.clock().getTime() && !this.revoked.has(peer.serial);
  }

  private async issue(req: AcceptedRequest, caller: Caller, via: IssueVia, bind = false): Promise<Issued> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.issueOnce(req, caller, via, bind);
      } catch (e) {
        // Another server on the store recorded this serial first: nothing was recorded, nobody
        // received this certificate; sign again with the next serial.
        if (!(e instanceof SerialTakenError) || tries >= SERIAL_TRIES) throw e;
        this.o.warn?.(`another server on the store took the serial drawn for ${req.deviceId} at the same moment; signing again with a fresh one (try ${tries + 1} of ${SERIAL_TRIES})`);
      }
    }
  }

  private async issueOnce(req: AcceptedRequest, caller: Caller, via: IssueVia, bind: boolean): Promise<Issued> {
    const notBefore = this.o.clock();
    const serial = this.o.serials.next();
    const keyId = req.keyId;
    const notAfter = validityEnd(notBefore, this.o.deviceDays, this.o.issuer.notAfter);
    const der = await deviceCertificate(this.o.issuer, { subject: req.subject, serial, publicKey: req.csr.spki, keyId, notBefore, days: this.o.deviceDays, revocationInfo: this.revocationInfo });
    // The audit line and the record are written at once; the answer waits for both (the record
    // on disk, the line written: audit-log.ts). A crash can leave a record without its line (a
    // process crash between the two, a machine stopping before the line is synced); recoverAudit()
    // writes that line at the next start.
    const audited = this.o.audit?.append({ event: 'issue', serial: serial.toString(), device: req.deviceId, by: caller.label, via, keyId: Buffer.from(keyId).toString('hex'), notAfter: notAfter.toISOString() });
    // Recorded (and fsync'd) before anyone sees it: a certificate handed out is never lost. The
    // key binding is checked by the store atomically with the insert, so two enrolments of one
    // new id with two keys cannot both pass.
    const stored = this.o.store.recordIssued({
      deviceId: req.deviceId,
      name: req.ou,
      serial,
      keyId,
      der,
      notBefore,
      notAfter,
      issuedBy: caller.label,
      issuedAt: notBefore,
      registration: this.o.registration,
    }, bind ? { at: notBefore } : undefined);
    const [a, r] = await Promise.allSettled([audited, stored]);
    if (r.status === 'rejected') {
      if (a.status === 'fulfilled' && audited) {
        const why = r.reason instanceof SerialTakenError ? 'SERIAL_TAKEN' : r.reason instanceof LitebootError ? r.reason.code : 'INTERNAL';
        await this.o.audit?.append({ event: 'issue-aborted', serial: serial.toString(), device: req.deviceId, why }).catch(() => {});
      }
      throw r.reason;
    }
    if (a.status === 'rejected') throw a.reason;
    for (const l of this.issueListeners) l(req.deviceId);
    return { der, serial, deviceId: req.deviceId };
  }

  /**
   * After a crash: writes the audit line of any certificate recorded in the last minute before the
   * log's last line, or after it, that has none: its line was still being written (the
   * certificate was not yet answered), or written but not yet on disk when the machine stopped
   * (the certificate may have been delivered). Returns how many lines it wrote.
   *
   * Assumes one process per audit log and store: with several servers on one store, another
   * server's certificates of that minute are written here too (marked `recovered`).
   */
  async recoverAudit(audit: { lastTime?: Date; issuedSerialsSince(t: Date): Set<string> }): Promise<number> {
    if (!audit.lastTime || !this.o.audit) return 0; // a new log beside an old database starts now
    const since = new Date(audit.lastTime.getTime() - 60_000);
    const logged = audit.issuedSerialsSince(since);
    let n = 0;
    for (const c of await this.o.store.issuedSince(since)) {
      if (logged.has(c.serial.toString())) continue;
      await this.o.audit.append({ event: 'issue', recovered: true, serial: c.serial.toString(), device: c.deviceId, by: c.issuedBy ?? null, keyId: Buffer.from(c.keyId).toString('hex'), notAfter: c.notAfter.toISOString() });
      n++;
    }
    return n;
  }

  /** Called after each certificate is recorded (cloud registration listens). */
  onIssued(listener: (deviceId: string) => void): void {
    this.issueListeners.push(listener);
  }

  /**
   * cr, p10cr and EST simpleenroll (`via: 'est'`): a new device certificate for a CSR that passes
   * policy. The same rules for every channel; only the `issued_by` record says which one
   * (`est:bootstrap:<serial>`), keeping the credential.
   */
  enrol(csrDer: Uint8Array, caller: Caller, via: IssueVia = 'cr'): Promise<Issued> {
    return this.counted(via, this.enrolNow(csrDer, caller, via));
  }

  private async enrolNow(csrDer: Uint8Array, caller: Caller, via: IssueVia): Promise<Issued> {
    const req = await acceptCsr(csrDer, this.o.policy);
    caller = via === 'est' ? { ...caller, label: `est:${caller.label}` } : caller;
    if (caller.role !== 'bootstrap') return this.issue(req, caller, via); // an operator may give an enrolled device a new key
    const rules = this.o.enrolment ?? { mode: 'open', allowRebind: false };
    if (rules.mode === 'allowlist' && !(await this.o.store.isAllowed(req.deviceId))) {
      throw new LitebootError('NOT_EXPECTED', `device ${req.deviceId} is not on the enrolment allowlist`);
    }
    try {
      if (!rules.allowRebind) {
        // Refused before signing (cheap, and no audit line for an attempt); the store checks again atomically.
        // Other keys first: a device re-enrolling with its bound key (the common case) reads no rows.
        const keyId = req.keyId;
        const at = this.o.clock();
        const others = await this.o.store.boundKeyIds(req.deviceId, at, keyId); // a store may ignore `except`
        if (others.length > 0 && !others.some((k) => keyId.equals(k)) && !(await this.o.store.boundKeyIds(req.deviceId, at)).some((k) => keyId.equals(k))) {
          throw new LitebootError('DEVICE_BOUND', 'device already enrolled with another key');
        }
      }
      return await this.issue(req, caller, via, !rules.allowRebind);
    } catch (e) {
      if (e instanceof LitebootError && e.code === 'DEVICE_BOUND') {
        this.o.warn?.(`refused a bootstrap enrolment (${caller.label}) for ${req.deviceId}: the device is enrolled with another key (a copied bootstrap key? a new key goes through kur or an operator)`);
      }
      throw e;
    }
  }

  /**
   * kur: a replacement for a device's certificate. The CSR's CN must be the caller's; the old
   * certificate stays valid (a device that loses power before storing the new key must still
   * be able to connect).
   */
  keyUpdate(csrDer: Uint8Array, caller: Caller): Promise<Issued> {
    return this.counted('kur', this.keyUpdateNow(csrDer, caller));
  }

  private async keyUpdateNow(csrDer: Uint8Array, caller: Caller): Promise<Issued> {
    const req = await acceptCsr(csrDer, this.o.policy);
    if (caller.role !== 'device' || req.deviceId.toLowerCase() !== caller.cn.toLowerCase()) {
      throw new LitebootError('FORBIDDEN', `the CSR's CN "${req.deviceId}" is not the CN of your certificate`);
    }
    return this.issue(req, caller, 'kur');
  }

  /**
   * EST simplereenroll (RFC 7030 §4.2.2): a new certificate, for a new key or the same one, with
   * the caller's current certificate. "The request Subject field and SubjectAltName extension
   * MUST be identical to the corresponding fields in the certificate being renewed/rekeyed." The
   * old certificate stays valid, as with kur.
   */
  reenrol(csrDer: Uint8Array, caller: Caller): Promise<Issued> {
    return this.counted('est', this.reenrolNow(csrDer, caller));
  }

  /**
   * Counts a request's outcome: refused for an error the caller caused (a 4xx: bad CSR, policy,
   * binding, allowlist), error for the CA's own failure (the store, a bug).
   */
  private counted(via: IssueVia, p: Promise<Issued>): Promise<Issued> {
    const m = this.metrics;
    return p.then(
      (r) => {
        m.issued(via, 'ok');
        return r;
      },
      (e: unknown) => {
        m.issued(via, e instanceof LitebootError && !SERVER_FAULTS.has(e.code) ? 'refused' : 'error');
        throw e;
      },
    );
  }

  private async reenrolNow(csrDer: Uint8Array, caller: Caller): Promise<Issued> {
    const req = await acceptCsr(csrDer, this.o.policy);
    const current = caller.role === 'device' ? await this.o.store.findBySerial(caller.serial) : undefined;
    if (!current) throw new LitebootError('FORBIDDEN', 'only a device certificate may re-enrol (RFC 7030 §4.2.2: with the certificate being renewed)');
    const cert = parseCertificate(current.der);
    const theirs = cert.subject.map((a) => (a.type === OID.commonName ? { type: a.type, value: canonicalUuid(a.value) ?? a.value } : a));
    const same = theirs.length === req.subject.length && theirs.every((a, i) => a.type === req.subject[i]!.type && a.value === req.subject[i]!.value);
    if (!same) {
      throw new LitebootError('FORBIDDEN', `CSR refused: the subject "${formatName(req.subject)}" is not that of your certificate "${formatName(theirs)}" (RFC 7030 §4.2.2)`);
    }
    // Device certificates never carry a subjectAltName (profiles.ts; nor did the Go server's):
    // an identical SAN is no SAN.
    const asked = req.csr.requestedExtensions.includes(OID.subjectAltName);
    if (asked || cert.extensionOids.includes(OID.subjectAltName)) {
      throw new LitebootError(
        'FORBIDDEN',
        asked ? 'CSR refused: it asks for a subjectAltName, and your certificate has none (RFC 7030 §4.2.2)' : 'CSR refused: your certificate has a subjectAltName, which liteboot does not issue to devices (RFC 7030 §4.2.2)',
      );
    }
    return this.issue(req, { ...caller, label: `est:${caller.label}` }, 'est');
  }

  /**
   * krr: a device may revoke its own certificates, an operator any, bootstrap and operator
   * credentials included. Revoking twice is not an error.
   */
  async revoke(serial: bigint, reason: number, caller: Caller): Promise<void> {
    if (!REASONS.has(reason)) throw new LitebootError('BAD_REASON', `revocation reason ${reason} is not accepted: give an RFC 5280 CRLReason 0-6, 9 or 10 (8, removeFromCRL, is only for delta CRLs)`);
    const rec = await this.o.store.findBySerial(serial);
    if (!rec) return this.revokeCredential(serial, reason, caller);
    if (caller.role === 'device' && rec.deviceId.toLowerCase() !== caller.cn.toLowerCase()) {
      throw new LitebootError('FORBIDDEN', 'a device may revoke only its own certificates');
    }
    if (caller.role !== 'device' && caller.role !== 'operator') throw new LitebootError('FORBIDDEN', 'this certificate may not revoke');
    const at = this.o.clock();
    if (!rec.valid) return;
    await this.o.audit?.append({ event: 'revoke', serial: serial.toString(), kind: 'device', device: rec.deviceId, by: caller.label, reason });
    if (await this.o.store.revoke(serial, reason, at)) await this.published(serial, at, reason);
  }

  /**
   * A revocation is in force on this process's listeners at once, and in its CRL before krr
   * answers; other servers on the store take it from the feed.
   */
  private async published(serial: bigint, at: Date, reason: number): Promise<void> {
    this.remember(serial, at, reason);
    this.metrics.revoked(reason);
    try {
      await this.crls.rebuild();
    } catch (e) {
      // The revocation is durable and enforced here already (listeners, OCSP, cs): krr succeeded.
      // Only the CRL is behind; it stays dirty and the resync (every RESYNC_MS) builds it again.
      this.o.warn?.(`crl: cannot publish a CRL with serial ${serial} yet: ${(e as Error).message}; trying again every ${RESYNC_MS / 1000} s`);
    }
  }

  private async revokeCredential(serial: bigint, reason: number, caller: Caller): Promise<void> {
    const cred = await this.o.store.findCredential(serial);
    if (!cred) throw new LitebootError('UNKNOWN_SERIAL', 'invalid serial number');
    if (caller.role !== 'operator') throw new LitebootError('FORBIDDEN', 'only an operator may revoke a bootstrap or operator credential');
    const at = this.o.clock();
    if (!cred.valid) return;
    await this.o.audit?.append({ event: 'revoke', serial: serial.toString(), kind: cred.kind, name: cred.name, by: caller.label, reason });
    if (await this.o.store.revokeCredential(serial, reason, at)) await this.published(serial, at, reason);
  }

  /** The enrolment allowlist: adds (or removes) device ids; returns how many changed. */
  async changeAllowlist(change: 'allow' | 'disallow', ids: readonly string[], by: string): Promise<number> {
    const canonical = ids.map((t) => {
      const id = canonicalUuid(t);
      if (!id) throw new LitebootError('BAD_UUID', `"${t}" is not a UUID`);
      return id;
    });
    await this.o.audit?.append({ event: change, devices: canonical, by });
    return change === 'allow' ? this.o.store.allowDevices(canonical, by, this.o.clock()) : this.o.store.disallowDevices(canonical);
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

  /**
   * OCSP: the status of a serial this CA may have issued, from the same state as the CRL, or from
   * the store's record when that is newer (a revocation on another server the feed has not
   * brought yet): OCSP is never behind the store.
   */
  async serialStatus(serial: bigint): Promise<OcspCertStatus> {
    const r = this.revoked.get(serial);
    if (r) return { status: 'revoked', revokedAt: r.revokedAt ?? this.o.clock(), reason: r.reason };
    const rec = (await this.o.store.findBySerial(serial)) ?? (await this.o.store.findCredential(serial));
    if (!rec) return { status: 'unknown' };
    return rec.valid ? { status: 'good' } : { status: 'revoked', revokedAt: rec.revokedAt ?? this.o.clock(), reason: rec.revokeReason };
  }
}
