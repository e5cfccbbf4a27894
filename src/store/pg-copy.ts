/**
 * `db copy` into PostgreSQL: a Dump (dump.ts) written in one transaction, in batches of
 * multi-row INSERTs (unnest of arrays: one statement per 5,000 rows, so 155k certificates take
 * seconds, not a round trip each), and read back for the checksum.
 */
import pg from 'pg';
import { LitebootError } from '../errors.js';
import { LOCAL_SETTINGS, type Dump } from './dump.js';
import { migrate, type MigrationResult } from './pg-schema.js';
import { describeDatabase, pgFault, pgPoolConfig } from './pg-store.js';

const BATCH = 5000;

/** A statement of the copy may take a while (5,000 rows; TRUNCATE of a large table); still bounded. */
const COPY_STATEMENT_MS = 120_000;

/** The store's own connection settings (libpq TLS, int8 as text, bounds) and error lines. */
function config(url: string): pg.PoolConfig {
  return pgPoolConfig({ url, poolSize: 1, statementTimeoutMs: COPY_STATEMENT_MS, connectTimeoutMs: 10_000 });
}

function unreachable(e: unknown, url: string, opening = false): unknown {
  return pgFault(e, describeDatabase(url), opening);
}

function safe(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    // libpq also takes secrets as query parameters (?password=, ?sslpassword=): masked too.
    for (const k of [...u.searchParams.keys()]) if (/^(ssl)?password$/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client(config(url));
  // Errors on an idle client (the server went away) surface through the next query instead.
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (e) {
    await c.end().catch(() => {});
    throw unreachable(e, url, true);
  }
  return c;
}

async function inBatches<T>(rows: readonly T[], insert: (batch: readonly T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH) await insert(rows.slice(i, i + BATCH));
}

/** `db migrate`: the schema created or brought up to date (under the advisory lock servers take too). */
export async function migratePg(url: string): Promise<MigrationResult> {
  try {
    return await migrate(config(url), () => {}, { where: describeDatabase(url) });
  } catch (e) {
    throw unreachable(e, url, true);
  }
}

/**
 * Writes `dump` into the database at `url` (its schema created or brought up to date first).
 * Refuses a target holding certificates, devices, credentials or allowlist entries unless
 * `force`, which replaces them. Returns how many rows `force` removed. One transaction: on any
 * failure the target is as it was.
 */
export async function copyIntoPg(url: string, dump: Dump, o: { force: boolean }): Promise<number> {
  await migratePg(url);
  const c = await connect(url);
  try {
    await c.query('BEGIN');
    // Nobody else writes while we look and copy (a server started on it meanwhile waits).
    await c.query('LOCK TABLE certs, devices, credentials, allowed_devices IN EXCLUSIVE MODE');
    const held = await c.query<{ certs: string; devices: string; credentials: string; allowed: string }>(
      `SELECT (SELECT count(*) FROM certs)::text AS certs, (SELECT count(*) FROM devices)::text AS devices,
              (SELECT count(*) FROM credentials)::text AS credentials, (SELECT count(*) FROM allowed_devices)::text AS allowed`,
    );
    const h = held.rows[0]!;
    const n = Number(h.certs) + Number(h.devices) + Number(h.credentials) + Number(h.allowed);
    if (n > 0 && !o.force) {
      throw new LitebootError(
        'FILE_EXISTS',
        `${safe(url)} is not empty (${h.certs} certificates, ${h.devices} devices, ${h.credentials} credentials, ${h.allowed} allowlist entries); refusing to copy into it (--force replaces them)`,
      );
    }
    if (n > 0) await c.query('TRUNCATE certs, devices, credentials, allowed_devices');
    await inBatches(dump.devices, (b) =>
      c.query(
        `INSERT INTO devices (id, registered, reg_state, reg_attempts, reg_last_error, reg_next_at, reg_updated_at, enrolled_by)
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::bigint[], $8::text[])`,
        [b.map((d) => d.id), b.map((d) => (d.registered ? 1 : 0)), b.map((d) => d.regState), b.map((d) => d.regAttempts), b.map((d) => d.regLastError), b.map((d) => d.regNextAt), b.map((d) => d.regUpdatedAt), b.map((d) => d.enrolledBy)],
      ),
    );
    // Source order is kept (ORDER BY ord): seq, the "oldest first" of every answer, follows it.
    await inBatches(dump.certs, (b) =>
      c.query(
        `INSERT INTO certs (id, name, serial, keyid, cert, expiry, valid, revoked_at, revoke_reason, not_before, not_after, issued_by, issued_at)
         SELECT id, name, serial, keyid, cert, expiry, valid, revoked_at, revoke_reason, not_before, not_after, issued_by, issued_at
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::boolean[], $8::bigint[], $9::int[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::bigint[])
           WITH ORDINALITY AS r(id, name, serial, keyid, cert, expiry, valid, revoked_at, revoke_reason, not_before, not_after, issued_by, issued_at, ord)
         ORDER BY ord`,
        [
          b.map((r) => r.id),
          b.map((r) => r.name),
          b.map((r) => r.serial),
          b.map((r) => Buffer.from(r.keyid)),
          b.map((r) => Buffer.from(r.cert)),
          b.map((r) => r.expiry),
          b.map((r) => r.valid),
          b.map((r) => r.revokedAt),
          b.map((r) => r.revokeReason),
          b.map((r) => r.notBefore),
          // The Go server wrote only `expiry`; the migration copied it to not_after.
          b.map((r) => r.notAfter ?? r.expiry),
          b.map((r) => r.issuedBy),
          b.map((r) => r.issuedAt),
        ],
      ),
    );
    await inBatches(dump.credentials, (b) =>
      c.query(
        `INSERT INTO credentials (serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason)
         SELECT serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bigint[], $6::boolean[], $7::bigint[], $8::int[])
           WITH ORDINALITY AS r(serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason, ord)
         ORDER BY ord`,
        [b.map((r) => r.serial), b.map((r) => r.kind), b.map((r) => r.name), b.map((r) => Buffer.from(r.cert)), b.map((r) => r.recordedAt), b.map((r) => r.valid), b.map((r) => r.revokedAt), b.map((r) => r.revokeReason)],
      ),
    );
    await inBatches(dump.allowed, (b) =>
      c.query(`INSERT INTO allowed_devices (id, added_at, added_by) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])`, [b.map((r) => r.id), b.map((r) => r.addedAt), b.map((r) => r.addedBy)]),
    );
    // A counter (the CRL number) never goes back: when both sides hold a number, the larger stays.
    const settings = dump.settings.filter(([k]) => !LOCAL_SETTINGS.has(k));
    await c.query(
      `INSERT INTO settings (key, value) SELECT * FROM unnest($1::text[], $2::text[])
       ON CONFLICT (key) DO UPDATE SET value = CASE
         WHEN settings.value ~ '^[0-9]{1,30}$' AND EXCLUDED.value ~ '^[0-9]{1,30}$' AND settings.value::numeric > EXCLUDED.value::numeric THEN settings.value
         ELSE EXCLUDED.value END`,
      [settings.map(([k]) => k), settings.map(([, v]) => v)],
    );
    await c.query('COMMIT');
    return n;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw unreachable(e, url);
  } finally {
    await c.end().catch(() => {});
  }
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const pgTime = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Reads the liteboot tables of the database at `url` back as a Dump (one snapshot: REPEATABLE READ). */
export async function dumpPg(url: string): Promise<Dump> {
  const c = await connect(url);
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // Serials and ms times as text: whatever int8 parser the process installed, none is rounded.
    const certs = await c.query(
      `SELECT id, name, serial::text AS serial, keyid, cert, expiry, valid, revoked_at::text AS revoked_at, revoke_reason,
              -- the form CADB.db keeps (the store's sqlTime: ms, UTC)
              to_char(not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') || '+00:00' AS not_before,
              to_char(not_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') || '+00:00' AS not_after, issued_by, issued_at::text AS issued_at
       FROM certs ORDER BY seq`,
    );
    const devices = await c.query(
      `SELECT id, registered, reg_state, reg_attempts, reg_last_error, reg_next_at::text AS reg_next_at, reg_updated_at::text AS reg_updated_at, enrolled_by FROM devices ORDER BY id`,
    );
    const credentials = await c.query(
      `SELECT serial, kind, name, cert, recorded_at::text AS recorded_at, valid, revoked_at::text AS revoked_at, revoke_reason FROM credentials ORDER BY seq`,
    );
    const allowed = await c.query(`SELECT id, added_at::text AS added_at, added_by FROM allowed_devices ORDER BY id`);
    const settings = await c.query<{ key: string; value: string }>(`SELECT key, value FROM settings ORDER BY key`);
    await c.query('COMMIT');
    return {
      certs: certs.rows.map((r) => ({
        id: r.id,
        name: r.name,
        serial: r.serial,
        keyid: r.keyid,
        cert: r.cert,
        expiry: r.expiry,
        valid: r.valid,
        revokedAt: num(r.revoked_at),
        revokeReason: num(r.revoke_reason),
        notBefore: pgTime(r.not_before),
        notAfter: pgTime(r.not_after),
        issuedBy: r.issued_by,
        issuedAt: num(r.issued_at),
      })),
      devices: devices.rows.map((r) => ({
        id: r.id,
        registered: Number(r.registered) !== 0,
        regState: r.reg_state,
        regAttempts: Number(r.reg_attempts),
        regLastError: r.reg_last_error,
        regNextAt: num(r.reg_next_at),
        regUpdatedAt: num(r.reg_updated_at),
        enrolledBy: r.enrolled_by,
      })),
      credentials: credentials.rows.map((r) => ({
        serial: r.serial,
        kind: r.kind,
        name: r.name,
        cert: r.cert,
        recordedAt: Number(r.recorded_at),
        valid: r.valid,
        revokedAt: num(r.revoked_at),
        revokeReason: num(r.revoke_reason),
      })),
      allowed: allowed.rows.map((r) => ({ id: r.id, addedAt: Number(r.added_at), addedBy: r.added_by })),
      settings: settings.rows.map((r) => [r.key, r.value] as [string, string]).filter(([k]) => !LOCAL_SETTINGS.has(k)),
    };
  } catch (e) {
    throw unreachable(e, url);
  } finally {
    await c.end().catch(() => {});
  }
}
