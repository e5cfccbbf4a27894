import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { LitebootError } from '../errors.js';

const pgClient = pg.Client;

/**
 * The PostgreSQL schema: CADB.db's `liteboot-2` tables (same names, same columns, same meaning),
 * typed for PostgreSQL, plus what several servers need: a primary key on the serial, an
 * insertion-order column (sql.js's rowid), the revocation feed's sequence and registration leases.
 * Times in milliseconds since the epoch stay bigint as in CADB.db; validity bounds are timestamptz.
 */
export const PG_SCHEMA_VERSION = 'liteboot-2';

/** Keys of PostgreSQL advisory locks (two-int form, first half: this namespace). */
export const LOCK_NAMESPACE = 0x6c62; // "lb"
export const LOCK_MIGRATE = 1;
/** pg_advisory_xact_lock(LOCK_DEVICE, hashtext(lower(device id))): binding check + insert. */
export const LOCK_DEVICE = LOCK_NAMESPACE + 1;

/** Settings key of the revocation feed's counter (bumped in each revoking transaction). */
export const REVOCATION_SEQ_KEY = 'liteboot.revocationSeq';
/** The LISTEN/NOTIFY channel of revocations. */
export const CHANGES_CHANNEL = 'liteboot_changes';

interface PgMigration {
  /** '' for an empty database. */
  from: string;
  to: string;
  sql: string;
}

const MIGRATIONS: readonly PgMigration[] = [
  {
    from: '',
    to: 'liteboot-2',
    sql: `
      CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
      CREATE TABLE devices (
        id text PRIMARY KEY,
        registered integer NOT NULL DEFAULT 0,
        reg_state text NOT NULL DEFAULT 'pending',
        reg_attempts integer NOT NULL DEFAULT 0,
        reg_last_error text,
        reg_next_at bigint,
        reg_updated_at bigint,
        enrolled_by text,
        -- registration leases (claimRegistrations): who works on it, until when (ms)
        lease_owner text,
        lease_until bigint);
      CREATE INDEX devices_reg ON devices (reg_state, reg_next_at);
      CREATE TABLE certs (
        -- insertion order: "oldest first" in the store's answers
        seq bigserial NOT NULL UNIQUE,
        id text NOT NULL REFERENCES devices (id),
        name text NOT NULL,
        -- RFC 5280 §4.1.2.2: positive; below 2^63 as in CADB.db. Unique across every server.
        serial bigint PRIMARY KEY CHECK (serial > 0),
        keyid bytea NOT NULL,
        cert bytea NOT NULL,
        -- the original server's column, as it wrote it (text)
        expiry text NOT NULL,
        valid boolean NOT NULL DEFAULT true,
        revoked_at bigint,
        revoke_reason integer,
        -- position in the revocation feed (settings ${REVOCATION_SEQ_KEY}); NULL for rows revoked before it
        revoked_seq bigint,
        not_before timestamptz,
        not_after timestamptz NOT NULL,
        issued_by text,
        issued_at bigint);
      -- device ids are compared in canonical lower case; originals may hold either case
      CREATE INDEX certs_lower_id ON certs (lower(id));
      CREATE INDEX certs_issued_at ON certs (issued_at);
      CREATE INDEX certs_revoked ON certs (seq) WHERE NOT valid;
      CREATE INDEX certs_revoked_seq ON certs (revoked_seq) WHERE revoked_seq IS NOT NULL;
      -- bootstrap and operator credentials: 127-bit serials, beyond bigint, as decimal text
      CREATE TABLE credentials (
        seq bigserial NOT NULL UNIQUE,
        serial text PRIMARY KEY,
        kind text NOT NULL,
        name text NOT NULL,
        cert bytea NOT NULL,
        recorded_at bigint NOT NULL,
        valid boolean NOT NULL DEFAULT true,
        revoked_at bigint,
        revoke_reason integer,
        revoked_seq bigint);
      CREATE INDEX credentials_revoked_seq ON credentials (revoked_seq) WHERE revoked_seq IS NOT NULL;
      CREATE TABLE allowed_devices (id text PRIMARY KEY, added_at bigint NOT NULL, added_by text);
      -- the feed starts at 1, so a cursor after a first full read is never the "from the beginning" 0
      INSERT INTO settings (key, value) VALUES ('${REVOCATION_SEQ_KEY}', '1');
      -- An enrolment in one round trip: with p_bind_at, the key binding check and the insert under
      -- a per-device advisory lock held to commit, so no two servers bind one id to two keys. In
      -- READ COMMITTED each statement of a VOLATILE function takes a fresh snapshot: the check,
      -- after the lock, sees the certificate of whoever held it before us.
      CREATE FUNCTION liteboot_record_issued(p_id text, p_lower text, p_name text, p_serial bigint, p_keyid bytea, p_cert bytea,
          p_expiry text, p_nb timestamptz, p_na timestamptz, p_by text, p_at bigint, p_reg text, p_bind_at timestamptz)
        RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
      BEGIN
        IF p_bind_at IS NOT NULL THEN
          PERFORM pg_advisory_xact_lock(${LOCK_DEVICE}, hashtext(p_lower));
          IF EXISTS (SELECT 1 FROM certs WHERE lower(id) = p_lower AND valid AND not_after > p_bind_at)
             AND NOT EXISTS (SELECT 1 FROM certs WHERE lower(id) = p_lower AND valid AND not_after > p_bind_at AND keyid = p_keyid) THEN
            RETURN false;
          END IF;
        END IF;
        INSERT INTO devices (id, registered, reg_state, reg_next_at, enrolled_by) VALUES (p_id, 0, p_reg, p_at, p_by) ON CONFLICT (id) DO NOTHING;
        INSERT INTO certs (id, name, serial, keyid, cert, expiry, valid, not_before, not_after, issued_by, issued_at)
          VALUES (p_id, p_name, p_serial, p_keyid, p_cert, p_expiry, true, p_nb, p_na, p_by, p_at);
        RETURN true;
      END $fn$;
    `,
  },
];

export const PG_CURRENT_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.to;

type Queryable = Pick<pg.ClientBase, 'query'>;

/** The schema version of the database, '' when it has no liteboot tables. */
export async function pgSchemaVersion(db: Queryable): Promise<string> {
  const t = await db.query<{ s: string | null; d: string | null; c: string | null }>(
    `SELECT to_regclass('settings')::text AS s, to_regclass('devices')::text AS d, to_regclass('certs')::text AS c`,
  );
  const row = t.rows[0]!;
  if (!row.s && !row.d && !row.c) return '';
  if (!row.s || !row.d || !row.c) {
    throw new LitebootError('DB_CORRUPT', 'the database has some of the tables settings/devices/certs but not all: not a liteboot database; it was left untouched');
  }
  const v = await db.query<{ value: string }>(`SELECT value FROM settings WHERE key = 'schemaVersion'`);
  if (!v.rows[0]) throw new LitebootError('DB_CORRUPT', 'the database has a settings table without schemaVersion: not a liteboot database; it was left untouched');
  return v.rows[0].value;
}

function pending(version: string): PgMigration[] {
  if (version === PG_CURRENT_VERSION) return [];
  const start = MIGRATIONS.findIndex((m) => m.from === version);
  if (start < 0) {
    throw new LitebootError('DB_CORRUPT', `the database has schema version "${version}", which this liteboot does not know (a newer liteboot wrote it?); it was left untouched`);
  }
  return MIGRATIONS.slice(start);
}

/** Refuses a database this liteboot cannot use as it is (for read-only opens: no migration). */
export async function checkPgSchema(db: Queryable): Promise<void> {
  const version = await pgSchemaVersion(db);
  if (version === '') throw new LitebootError('DB_CORRUPT', 'the database has no liteboot schema yet; run `liteboot db migrate` (or start a server on it) first');
  if (pending(version).length > 0) throw new LitebootError('DB_CORRUPT', `the database has schema version "${version}"; run \`liteboot db migrate\` to bring it to ${PG_CURRENT_VERSION}`);
}

export interface MigrationResult {
  from: string;
  to: string;
  /** Migrations this call ran (0 when the database was current already, or another server migrated it first). */
  ran: number;
}

/** How long a starting server (or `db migrate`) waits for another one's migration before giving up with one clear line. */
export const MIGRATE_LOCK_TIMEOUT_MS = 60_000;

/**
 * Brings the database to PG_CURRENT_VERSION. Several servers starting together: the first one
 * takes the session advisory lock and migrates, the others wait for it and find nothing to do.
 * Each migration runs in one transaction with its version bump. A version newer than ours is refused.
 */
export async function migrate(config: pg.ClientConfig, log: (m: string) => void = () => {}, o: { lockTimeoutMs?: number; where?: string } = {}): Promise<MigrationResult> {
  // A client of its own, without the pool's statement_timeout and client-side query_timeout (a
  // bound for requests, ~4.5 s): waiting for another server's migration, or running a long one, is
  // not a hung request. The wait for the lock has its own, explicit bound (lock_timeout).
  const lockTimeoutMs = o.lockTimeoutMs ?? MIGRATE_LOCK_TIMEOUT_MS;
  const client = new pgClient({ ...config, statement_timeout: undefined, query_timeout: undefined, options: undefined });
  client.on('error', () => {}); // surfaces through the next query
  await client.connect();
  try {
    await client.query(`SET statement_timeout = 0`);
    await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, LOCK_MIGRATE]);
    } catch (e) {
      if ((e as { code?: unknown }).code === '55P03') {
        throw new LitebootError('DB_LOCKED', `another liteboot has been migrating the PostgreSQL database${o.where ? ` at ${o.where}` : ''} for over ${lockTimeoutMs / 1000} s (advisory lock ${LOCK_NAMESPACE}/${LOCK_MIGRATE} held); wait for it, or end that session, then start again`, { cause: e });
      }
      throw e;
    }
    await client.query('SET lock_timeout = 0');
    try {
      const from = await pgSchemaVersion(client);
      const todo = pending(from);
      for (const m of todo) {
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          if (m.from === '') {
            await client.query(`INSERT INTO settings (key, value) VALUES ('schemaVersion', $1), ('uuid', $2)`, [m.to, randomUUID()]);
          } else {
            await client.query(`UPDATE settings SET value = $1 WHERE key = 'schemaVersion'`, [m.to]);
          }
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => {});
          throw e;
        }
      }
      if (todo.length > 0) log(`migrated the PostgreSQL database from schema ${from === '' ? '(empty)' : from} to ${todo[todo.length - 1]!.to}`);
      return { from, to: PG_CURRENT_VERSION, ran: todo.length };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, LOCK_MIGRATE]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}
