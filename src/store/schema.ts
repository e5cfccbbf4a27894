import type { Database } from 'sql.js';
import { LitebootError } from '../errors.js';

/** The original Go server's schema (version 20220215a), kept as the base so its files open as they are. */
export const GO_SCHEMA_VERSION = '20220215a';
const GO_SCHEMA = `
CREATE TABLE settings (key STRING PRIMARY KEY,
		value STRING NOT NULL);
CREATE TABLE devices (id STRING PRIMARY KEY,
		registered INTEGER NOT NULL);
CREATE TABLE certs (id STRING NOT NULL REFERENCES devices(id),
		name STRING NOT NULL,
		serial STRING NOT NULL,
		keyid BLOB NOT NULL,
		cert BLOB NOT NULL,
		expiry DATE NOT NULL,
		valid INTEGER NOT NULL,
		PRIMARY KEY (id, serial));
`;

interface Migration {
  from: string;
  to: string;
  /** Runs inside a transaction. */
  up(db: Database): void;
}

/**
 * Ordered migrations; each runs once, moving settings.schemaVersion from `from` to `to`.
 * Columns are only added: every row and every original column is kept.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    from: GO_SCHEMA_VERSION,
    to: 'liteboot-1',
    up(db) {
      db.run(`
        ALTER TABLE certs ADD COLUMN revoked_at INTEGER;
        ALTER TABLE certs ADD COLUMN revoke_reason INTEGER;
        ALTER TABLE certs ADD COLUMN not_before TEXT;
        ALTER TABLE certs ADD COLUMN not_after TEXT;
        ALTER TABLE certs ADD COLUMN issued_by TEXT;
        ALTER TABLE certs ADD COLUMN issued_at INTEGER;
        ALTER TABLE devices ADD COLUMN reg_state TEXT NOT NULL DEFAULT 'pending';
        ALTER TABLE devices ADD COLUMN reg_attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE devices ADD COLUMN reg_last_error TEXT;
        ALTER TABLE devices ADD COLUMN reg_next_at INTEGER;
        ALTER TABLE devices ADD COLUMN reg_updated_at INTEGER;
        UPDATE devices SET reg_state = CASE WHEN registered != 0 THEN 'registered' ELSE 'pending' END, reg_next_at = 0;
        UPDATE certs SET not_after = expiry;
        -- The original scanned the whole table for every serial lookup.
        CREATE INDEX certs_serial ON certs(serial);
        -- Device ids are compared in canonical lower case; originals may hold either case.
        CREATE INDEX certs_lower_id ON certs(lower(id));
        CREATE INDEX devices_reg ON devices(reg_state, reg_next_at);
      `);
    },
  },
  {
    from: 'liteboot-1',
    to: 'liteboot-2',
    up(db) {
      db.run(`
        -- Bootstrap and operator credentials (threat model: a leaked one must be revocable).
        -- Serials as decimal text: setup-* makes 127-bit serials, beyond SQLite's INTEGER.
        CREATE TABLE credentials (serial TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                name TEXT NOT NULL,
                cert BLOB NOT NULL,
                recorded_at INTEGER NOT NULL,
                valid INTEGER NOT NULL DEFAULT 1,
                revoked_at INTEGER,
                revoke_reason INTEGER);
        -- The enrolment allowlist: device ids in canonical lower case.
        CREATE TABLE allowed_devices (id TEXT PRIMARY KEY,
                added_at INTEGER NOT NULL,
                added_by TEXT);
        -- Which credential enrolled the device (its first certificate's issued_by).
        ALTER TABLE devices ADD COLUMN enrolled_by TEXT;
        -- Audit recovery after a crash reads the last minute's certificates.
        CREATE INDEX certs_issued_at ON certs(issued_at);
        UPDATE devices SET enrolled_by = (SELECT c.issued_by FROM certs c WHERE c.id = devices.id ORDER BY c.rowid LIMIT 1);
      `);
      // The original marked certificates invalid without a date; a CRL entry needs one, and the
      // same one in every CRL: the time of this migration.
      db.run('UPDATE certs SET revoked_at = ? WHERE valid = 0 AND revoked_at IS NULL', [Date.now()]);
    },
  },
];

export const CURRENT_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.to;

export function createBaseSchema(db: Database, uuid: string): void {
  db.run(GO_SCHEMA);
  db.run('INSERT INTO settings (key, value) VALUES (?, ?), (?, ?)', ['schemaVersion', GO_SCHEMA_VERSION, 'uuid', uuid]);
}

export function schemaVersion(db: Database, path: string): string {
  let rows;
  try {
    rows = db.exec(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('settings', 'devices', 'certs')`);
  } catch (e) {
    throw new LitebootError('DB_CORRUPT', `${path} is not a readable SQLite database (${(e as Error).message}); it was left untouched`, { cause: e });
  }
  const tables = rows[0]?.values.map((r) => String(r[0])) ?? [];
  if (tables.length !== 3) {
    throw new LitebootError('DB_CORRUPT', `${path} is a SQLite database but not a liteboot one (no settings/devices/certs tables); it was left untouched`);
  }
  const v = db.exec(`SELECT value FROM settings WHERE key = 'schemaVersion'`)[0]?.values[0]?.[0];
  if (typeof v !== 'string') throw new LitebootError('DB_CORRUPT', `${path} has no schemaVersion setting; it was left untouched`);
  return v;
}

/** Migrations still to run for a database at `version`; an unknown version is refused. */
export function pendingMigrations(version: string, path: string): Migration[] {
  if (version === CURRENT_VERSION) return [];
  const start = MIGRATIONS.findIndex((m) => m.from === version);
  if (start < 0) {
    throw new LitebootError('DB_CORRUPT', `${path} has schema version "${version}", which this liteboot does not know (a newer liteboot wrote it?); it was left untouched`);
  }
  return MIGRATIONS.slice(start);
}

export function runMigrations(db: Database, migrations: readonly Migration[]): void {
  for (const m of migrations) {
    db.run('BEGIN');
    try {
      m.up(db);
      db.run(`UPDATE settings SET value = ? WHERE key = 'schemaVersion'`, [m.to]);
      db.run('COMMIT');
    } catch (e) {
      db.run('ROLLBACK');
      throw new LitebootError('DB_CORRUPT', `migration ${m.from} -> ${m.to} failed: ${(e as Error).message}`, { cause: e });
    }
  }
}
