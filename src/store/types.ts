import { LitebootError } from '../errors.js';

/**
 * The CA's memory, as the authority sees it: a small domain interface with no SQL in it, so a
 * second implementation (a networked database for several servers) can follow without touching
 * the authority.
 */

/** Registration of a device with its cloud service (issue: cloud registration). */
export type RegistrationStatus = 'pending' | 'registered' | 'failed' | 'none';

export interface Registration {
  status: RegistrationStatus;
  attempts: number;
  lastError?: string;
  /** When the worker should try next (ms since the epoch). */
  nextAttemptAt?: number;
  updatedAt?: number;
}

/** A certificate the CA issued, as recorded. */
export interface IssuedCertificate {
  /** Device id: the certificate's CN, canonical lower case for new records. */
  deviceId: string;
  /** The original's `name` column: the subject's OU (or '' when there is none). */
  name: string;
  serial: bigint;
  /** Subject key identifier. */
  keyId: Uint8Array;
  der: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Who asked for it: e.g. `bootstrap`, `operator:alice`, `device:<serial>` (kur). */
  issuedBy?: string;
  issuedAt?: Date;
  /** Registration state of a device seen for the first time: `pending` (registered in the background) or `none` (no provider). */
  registration?: 'pending' | 'none';
}

export interface CertificateRecord extends IssuedCertificate {
  valid: boolean;
  revokedAt?: Date;
  /** RFC 5280 §5.3.1 CRLReason code. */
  revokeReason?: number;
}

export interface Revocation {
  serial: bigint;
  /** Unknown for rows the original server marked invalid. */
  revokedAt?: Date;
  reason?: number;
}

export interface DeviceSummary {
  id: string;
  certificates: number;
  validCertificates: number;
  registration: Registration;
  /** Who enrolled the device first (`issued_by` of its first certificate: `bootstrap:<serial>`, `operator:<name>`). */
  enrolledBy?: string;
}

/** A shared factory (bootstrap) or operator credential the CA issued: revocable like any certificate. */
export type CredentialKind = 'bootstrap' | 'operator';

export interface Credential {
  /** Any size: credentials made by `setup-*` carry random 127-bit serials (not the certs table's 63-bit ones). */
  serial: bigint;
  kind: CredentialKind;
  /** The file's name part (`BOOTSTRAP-<name>.crt`, `OPERATOR-<name>.crt`; `default` for BOOTSTRAP.crt) or the CN. */
  name: string;
  der: Uint8Array;
  recordedAt: Date;
}

export interface CredentialRecord extends Credential {
  valid: boolean;
  revokedAt?: Date;
  revokeReason?: number;
}

/**
 * The key binding of an enrolment (threat model: the bootstrap key is public). The store refuses
 * the certificate, atomically with recording it, when the device already holds a certificate
 * valid at `at` and none of those has this certificate's key id.
 */
export interface BindingCheck {
  at: Date;
}

export interface FleetCounts {
  valid: number;
  expiring: number;
  registrations: Record<string, number>;
}

/**
 * recordIssued refused a certificate because its serial is recorded already (certs.serial is
 * unique in every store): nothing was recorded, the caller retries with a fresh serial. Several
 * servers on one database draw serials independently, so this can happen, if very rarely.
 */
export class SerialTakenError extends LitebootError {
  constructor(readonly serial: bigint) {
    super('INTERNAL', `serial ${serial} is recorded already`);
    this.name = 'SerialTakenError';
  }
}

/** A page of the revocation feed: what was revoked after a cursor, and the cursor to ask with next. */
export interface RevocationPage {
  items: Revocation[];
  cursor: bigint;
}

export interface Store {
  /**
   * Records an issued certificate; resolves once it is durable on disk. With `binding`, rejects
   * with DEVICE_BOUND (and records nothing) if the device holds certificates valid at
   * `binding.at` and none has `cert.keyId`; the check and the insert cannot interleave with
   * another recordIssued for the same device, on this server or another one on the same database.
   * A serial recorded already rejects with SerialTakenError (and records nothing).
   */
  recordIssued(cert: IssuedCertificate, binding?: BindingCheck): Promise<void>;
  /**
   * Key ids of the device's certificates that are unrevoked and unexpired at `at` (device ids
   * compared in lower case). With `except`, a store may leave that key out (SqlJsStore does: a
   * device re-enrolling with its own key, the common case, then costs no rows however many
   * certificates it has); callers must accept either answer.
   */
  boundKeyIds(deviceId: string, at: Date, except?: Uint8Array): Promise<Uint8Array[]>;
  /** Marks a certificate revoked; false if the serial is unknown or already revoked. Durable on resolve. */
  revoke(serial: bigint, reason: number, at: Date): Promise<boolean>;
  findBySerial(serial: bigint): Promise<CertificateRecord | undefined>;
  /** Certificates issued at or after `t` (by `issuedAt`), oldest first: for audit recovery after a crash. */
  issuedSince(t: Date): Promise<CertificateRecord[]>;
  /** Unrevoked serials of a device (compared in lower case), oldest first. */
  validSerials(deviceId: string): Promise<bigint[]>;
  /** Every revoked certificate, device certificates and credentials alike, for CRLs and the TLS listeners. */
  revocations(): Promise<Revocation[]>;
  /**
   * The revocation feed: every revocation (device certificates and credentials) recorded after
   * `cursor`, in the order they were recorded, and the cursor to pass next time. `0n` starts from
   * the beginning (everything revoked so far, including rows revoked before the feed existed). A
   * cursor only means something to the store (and database) that returned it.
   */
  revocationsSince(cursor: bigint): Promise<RevocationPage>;
  /**
   * Calls `onChange` soon after anything is revoked, by this process or (PostgreSQL) any server on
   * the same database; it then reads revocationsSince. A hint, not a guarantee: keep a periodic
   * resync too. Returns the unsubscribe function.
   */
  watch(onChange: () => void): () => void;
  /**
   * Atomically adds one to the named counter (kept in settings as a decimal string; missing = 0)
   * and returns the new value: unique and increasing across every server on the database (the CRL number).
   */
  nextCounter(key: string): Promise<bigint>;
  /** Records a credential; false (and nothing changed) if that serial is recorded already. */
  recordCredential(c: Credential): Promise<boolean>;
  findCredential(serial: bigint): Promise<CredentialRecord | undefined>;
  credentials(): Promise<CredentialRecord[]>;
  /** Marks a credential revoked; false if unknown or already revoked. Durable on resolve. */
  revokeCredential(serial: bigint, reason: number, at: Date): Promise<boolean>;
  /** The enrolment allowlist (`[server] enrolment = "allowlist"`): adds ids (canonical lower case); returns how many were new. */
  allowDevices(ids: readonly string[], by: string, at: Date): Promise<number>;
  /** Removes ids from the allowlist; returns how many were there. */
  disallowDevices(ids: readonly string[]): Promise<number>;
  isAllowed(deviceId: string): Promise<boolean>;
  allowedDevices(): Promise<{ id: string; addedAt: Date; addedBy?: string }[]>;
  /** The largest serial recorded (0 when empty), so new serials stay unique across restarts. */
  maxSerial(): Promise<bigint>;
  listDevices(): Promise<DeviceSummary[]>;
  registration(deviceId: string): Promise<Registration | undefined>;
  setRegistration(deviceId: string, reg: Registration): Promise<void>;
  /** Devices whose registration is pending and due at `now` (a read-only listing: claim before working on one). */
  dueRegistrations(now: number, limit: number): Promise<string[]>;
  /**
   * Claims up to `limit` devices whose registration is pending, due at `now` (ms since the epoch)
   * and not leased (never, or the lease ended by `now`), leasing them to `owner` until
   * `now + leaseMs`; returns their ids, most overdue first. A leased device is not handed out
   * again, not even to its owner (whose worker is still on it): two workers never hold one device
   * at once. setRegistration ends the lease; an owner that dies leaves it to expire.
   */
  claimRegistrations(now: number, limit: number, owner: string, leaseMs: number): Promise<string[]>;
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /**
   * Why writes fail now (the journal failed, read-only, closed), or undefined when they can
   * succeed. Synchronous, so PostgreSQL answers only read-only/closed here: its faults surface per
   * call, as DB_UNAVAILABLE.
   */
  writeFailure(): Error | undefined;
  /**
   * Unrevoked certificates valid at `at`, how many of those end by `expiringBefore`, and devices
   * by registration state: a scan of the tables, for the metrics gauges (cached there).
   */
  fleetCounts(at: Date, expiringBefore: Date): Promise<FleetCounts>;
  /** Counts, for status output and benchmarks. */
  stats(): Promise<{ certificates: number; devices: number }>;
  /** sql.js: flushes, writes a final snapshot and releases the lock. PostgreSQL: ends the pool and the LISTEN connection. */
  close(): Promise<void>;
}
