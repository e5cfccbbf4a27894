/**
 * A whole database as rows, for `db copy`: every column of every liteboot table, as the store
 * keeps it (the original's text dates, ms-since-epoch integers, serials as decimal strings), so
 * a copy can be compared with its source row for row. Read from CADB.db (a liteboot or Go file,
 * its journal applied and migrated in memory, the file untouched) and written to PostgreSQL by
 * pg-copy.ts; or read from PostgreSQL (pg-copy.ts) and written as a new CADB.db here.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import initSqlJs, { type Database, type SqlValue } from 'sql.js';
import { writeFileAtomic } from '../atomic-file.js';
import { DB_FILE_MODE } from './journal.js';
import { createBaseSchema, MIGRATIONS, runMigrations } from './schema.js';
import { openStore } from './sqljs-store.js';

export interface CertRow {
  id: string;
  name: string;
  /** Decimal, 1..2^63-1. */
  serial: string;
  keyid: Uint8Array;
  cert: Uint8Array;
  /** The original's `expiry` column, as written (Go: `2027-11-26 19:42:56.495+00:00`). */
  expiry: string;
  valid: boolean;
  revokedAt: number | null;
  revokeReason: number | null;
  notBefore: string | null;
  notAfter: string | null;
  issuedBy: string | null;
  issuedAt: number | null;
}

export interface DeviceRow {
  id: string;
  registered: boolean;
  regState: string;
  regAttempts: number;
  regLastError: string | null;
  regNextAt: number | null;
  regUpdatedAt: number | null;
  enrolledBy: string | null;
}

export interface CredentialRow {
  /** Decimal; setup-* makes 127-bit serials. */
  serial: string;
  kind: string;
  name: string;
  cert: Uint8Array;
  recordedAt: number;
  valid: boolean;
  revokedAt: number | null;
  revokeReason: number | null;
}

export interface AllowedRow {
  id: string;
  addedAt: number;
  addedBy: string | null;
}

export interface Dump {
  certs: CertRow[];
  devices: DeviceRow[];
  credentials: CredentialRow[];
  allowed: AllowedRow[];
  /** Every setting but the store's own bookkeeping (schema version, journal sequence). */
  settings: [string, string][];
}

/** Settings that describe one store's file, not the CA: never copied. */
export const LOCAL_SETTINGS: ReadonlySet<string> = new Set(['schemaVersion', 'liteboot.journalSeq', 'liteboot.revocationSeq']);

export interface Counts {
  certificates: number;
  revoked: number;
  devices: number;
  credentials: number;
  allowlist: number;
}

export function countsOf(d: Dump): Counts {
  return {
    certificates: d.certs.length,
    revoked: d.certs.filter((c) => !c.valid).length + d.credentials.filter((c) => !c.valid).length,
    devices: d.devices.length,
    credentials: d.credentials.length,
    allowlist: d.allowed.length,
  };
}

/**
 * Settings of `from` missing from `to` or different there. A counter that is larger in `to` (a
 * CRL number the target had already passed: it never goes back) counts as copied.
 */
export function settingsMissing(from: Dump['settings'], to: Dump['settings']): string[] {
  const there = new Map(to);
  return from
    .filter(([k, v]) => {
      const t = there.get(k);
      if (t === v) return false;
      return !(t !== undefined && /^\d+$/.test(t) && /^\d+$/.test(v) && BigInt(t) > BigInt(v));
    })
    .map(([k]) => k);
}

/**
 * sha256 over `serial|device id|valid|revoke reason|hex(DER)\n` for every certificate in serial
 * order, then `credential|serial|valid|hex(DER)\n` for every credential in serial order: equal
 * on both sides means every serial, id, certificate byte and revocation arrived.
 */
export function checksumOf(d: Pick<Dump, 'certs' | 'credentials'>): string {
  const h = createHash('sha256');
  const bySerial = <T extends { serial: string }>(rows: T[]) => [...rows].sort((a, b) => cmp(BigInt(a.serial), BigInt(b.serial)));
  for (const c of bySerial(d.certs)) h.update(`${c.serial}|${c.id}|${c.valid ? 1 : 0}|${c.revokeReason ?? ''}|${Buffer.from(c.cert).toString('hex')}\n`);
  for (const c of bySerial(d.credentials)) h.update(`credential|${c.serial}|${c.valid ? 1 : 0}|${Buffer.from(c.cert).toString('hex')}\n`);
  return h.digest('hex');
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const str = (v: SqlValue): string | null => (v === null ? null : String(v));
const int = (v: SqlValue): number | null => (v === null ? null : Number(v));
const bytes = (v: SqlValue): Uint8Array => (v instanceof Uint8Array ? v : Buffer.from(String(v ?? '')));

function rows(db: Database, sql: string): SqlValue[][] {
  const s = db.prepare(sql);
  const out: SqlValue[][] = [];
  try {
    while (s.step()) out.push(s.get());
  } finally {
    s.free();
  }
  return out;
}

/**
 * Reads CADB.db at `path` (read-only, beside a running server too): the store opens it as it
 * would (journal applied, a Go file migrated in memory), writes a consistent copy aside, and the
 * copy is read table by table. The file and its journal are left as they were.
 */
export async function dumpSqlite(path: string): Promise<Dump> {
  const tmp = mkdtempSync(join(tmpdir(), 'liteboot-dump-'));
  try {
    const store = await openStore({ path, readOnly: true });
    try {
      store.backupTo(join(tmp, 'CADB.db'));
    } finally {
      await store.close();
    }
    const SQL = await initSqlJs();
    const db = new SQL.Database(readFileSync(join(tmp, 'CADB.db')));
    try {
      return {
        // CAST: the original stored serials as 64-bit INTEGERs beyond 2^53; a JS number would round them.
        certs: rows(db, `SELECT id, name, CAST(serial AS TEXT), keyid, cert, expiry, valid, revoked_at, revoke_reason, not_before, not_after, issued_by, issued_at FROM certs ORDER BY rowid`).map((r) => ({
          id: String(r[0]),
          name: String(r[1]),
          serial: String(r[2]),
          keyid: bytes(r[3]!),
          cert: bytes(r[4]!),
          expiry: String(r[5]),
          valid: Number(r[6]) !== 0,
          revokedAt: int(r[7]!),
          revokeReason: int(r[8]!),
          notBefore: str(r[9]!),
          notAfter: str(r[10]!),
          issuedBy: str(r[11]!),
          issuedAt: int(r[12]!),
        })),
        devices: rows(db, `SELECT id, registered, reg_state, reg_attempts, reg_last_error, reg_next_at, reg_updated_at, enrolled_by FROM devices ORDER BY rowid`).map((r) => ({
          id: String(r[0]),
          registered: Number(r[1]) !== 0,
          regState: String(r[2] ?? 'pending'),
          regAttempts: Number(r[3] ?? 0),
          regLastError: str(r[4]!),
          regNextAt: int(r[5]!),
          regUpdatedAt: int(r[6]!),
          enrolledBy: str(r[7]!),
        })),
        credentials: rows(db, `SELECT serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason FROM credentials ORDER BY rowid`).map((r) => ({
          serial: String(r[0]),
          kind: String(r[1]),
          name: String(r[2]),
          cert: bytes(r[3]!),
          recordedAt: Number(r[4]),
          valid: Number(r[5]) !== 0,
          revokedAt: int(r[6]!),
          revokeReason: int(r[7]!),
        })),
        allowed: rows(db, `SELECT id, added_at, added_by FROM allowed_devices ORDER BY id`).map((r) => ({ id: String(r[0]), addedAt: Number(r[1]), addedBy: str(r[2]!) })),
        settings: rows(db, `SELECT key, value FROM settings ORDER BY key`)
          .map((r) => [String(r[0]), String(r[1])] as [string, string])
          .filter(([k]) => !LOCAL_SETTINGS.has(k)),
      };
    } finally {
      db.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Writes `dump` as a new CADB.db at `path` (schema liteboot-2, 0600, written aside, synced and
 * renamed): the way back from PostgreSQL to one server. The caller makes sure `path` is free.
 */
export async function writeSqlite(path: string, dump: Dump): Promise<void> {
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  try {
    createBaseSchema(db, randomUUID());
    runMigrations(db, MIGRATIONS);
    db.run('BEGIN');
    const insert = (sql: string, rows: SqlValue[][]) => {
      const st = db.prepare(sql);
      try {
        for (const r of rows) st.run(r);
      } finally {
        st.free();
      }
    };
    insert(
      'INSERT INTO devices (id, registered, reg_state, reg_attempts, reg_last_error, reg_next_at, reg_updated_at, enrolled_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      dump.devices.map((d) => [d.id, d.registered ? 1 : 0, d.regState, d.regAttempts, d.regLastError, d.regNextAt, d.regUpdatedAt, d.enrolledBy]),
    );
    // Serials go in as decimal text; the column's affinity stores them as 64-bit integers, as the store does.
    insert(
      'INSERT INTO certs (id, name, serial, keyid, cert, expiry, valid, revoked_at, revoke_reason, not_before, not_after, issued_by, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      dump.certs.map((c) => [c.id, c.name, c.serial, c.keyid, c.cert, c.expiry, c.valid ? 1 : 0, c.revokedAt, c.revokeReason, c.notBefore, c.notAfter, c.issuedBy, c.issuedAt]),
    );
    insert(
      'INSERT INTO credentials (serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      dump.credentials.map((c) => [c.serial, c.kind, c.name, c.cert, c.recordedAt, c.valid ? 1 : 0, c.revokedAt, c.revokeReason]),
    );
    insert('INSERT INTO allowed_devices (id, added_at, added_by) VALUES (?, ?, ?)', dump.allowed.map((a) => [a.id, a.addedAt, a.addedBy]));
    insert('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)', dump.settings.filter(([k]) => !LOCAL_SETTINGS.has(k)));
    db.run('COMMIT');
    writeFileAtomic(path, db.export(), DB_FILE_MODE, true);
  } finally {
    db.close();
  }
}
