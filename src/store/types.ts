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
}

export interface Store {
  /** Records an issued certificate; resolves once it is durable on disk. */
  recordIssued(cert: IssuedCertificate): Promise<void>;
  /** Marks a certificate revoked; false if the serial is unknown or already revoked. Durable on resolve. */
  revoke(serial: bigint, reason: number, at: Date): Promise<boolean>;
  findBySerial(serial: bigint): Promise<CertificateRecord | undefined>;
  /** Unrevoked serials of a device (compared in lower case), oldest first. */
  validSerials(deviceId: string): Promise<bigint[]>;
  /** Every revoked certificate, for CRLs and the TLS listeners. */
  revocations(): Promise<Revocation[]>;
  /** The largest serial recorded (0 when empty), so new serials stay unique across restarts. */
  maxSerial(): Promise<bigint>;
  listDevices(): Promise<DeviceSummary[]>;
  registration(deviceId: string): Promise<Registration | undefined>;
  setRegistration(deviceId: string, reg: Registration): Promise<void>;
  /** Devices whose registration is pending and due at `now`. */
  dueRegistrations(now: number, limit: number): Promise<string[]>;
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  /** Counts, for status output and benchmarks. */
  stats(): Promise<{ certificates: number; devices: number }>;
  /** Flushes, writes a final snapshot and releases the lock. */
  close(): Promise<void>;
}
