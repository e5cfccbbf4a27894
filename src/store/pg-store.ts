import pg from 'pg';
import { LitebootError } from '../errors.js';
import { CHANGES_CHANNEL, checkPgSchema, migrate, REVOCATION_SEQ_KEY } from './pg-schema.js';
import {
  SerialTakenError,
  type BindingCheck,
  type CertificateRecord,
  type Credential,
  type CredentialKind,
  type CredentialRecord,
  type DeviceSummary,
  type FleetCounts,
  type IssuedCertificate,
  type Registration,
  type RegistrationStatus,
  type Revocation,
  type RevocationPage,
  type Store,
} from './types.js';

export interface PgStoreOptions {
  /** postgres://user[:password]@host[:port]/db[?sslmode=...]; libpq variables (PGHOST, PGPASSWORD, PGSSLMODE...) fill in what it leaves out. */
  url: string;
  /** Writes are refused (DB_READONLY) and no migration runs: for listing beside running servers. */
  readOnly?: boolean;
  log?: (message: string) => void;
  /** Each committed write with its duration in seconds (for metrics). */
  onCommit?: (seconds: number) => void;
  /** Connections in the pool (default 16). */
  poolSize?: number;
  /** Bound on one statement, server side and client side (default 4000 ms): no request waits longer on the database. */
  statementTimeoutMs?: number;
  /** Bound on getting a connection, from the pool or a new one (default 3000 ms). */
  connectTimeoutMs?: number;
  /**
   * How often the LISTEN connection is asked for a sign of life (default 30 s); no answer within
   * a third of that, and it is replaced. A connection that went silent (a half-open TCP
   * connection after a failover or a network partition) brings no error and no notification.
   */
  listenCheckMs?: number;
}

/** Serials are positive and below 2^63 (int8), as in CADB.db. */
const MAX_SERIAL = (1n << 63n) - 1n;
const validSerial = (s: bigint) => s > 0n && s <= MAX_SERIAL;

/** int8 stays text (exact); we turn it into BigInt ourselves. Other types as node-postgres parses them. */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 && format !== 'binary') return (v: string) => v;
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  },
} as pg.CustomTypesConfig;

/** host:port/db of a URL, as libpq would resolve it, without the password: for messages. */
export function describeDatabase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'the PostgreSQL database (an unreadable URL)';
  }
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const host = dec(u.hostname) || u.searchParams.get('host') || process.env.PGHOST || 'localhost';
  const port = u.port || process.env.PGPORT || '5432';
  const db = dec(u.pathname.slice(1)) || process.env.PGDATABASE || dec(u.username) || process.env.PGUSER || '';
  return `${host}:${port}/${db}`;
}

const LIBPQ_SSLMODES = new Set(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']);

/**
 * The URL with libpq's TLS meaning, as psql reads the same URL: node-postgres by itself treats
 * sslmode=require and verify-ca as verify-full (and warns); with uselibpqcompat it follows libpq.
 * PGSSLMODE/PGSSLROOTCERT/PGSSLCERT/PGSSLKEY fill in what the URL leaves out, as in libpq.
 */
export function libpqUrl(url: string, env: NodeJS.ProcessEnv = process.env): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url; // node-postgres reports what is wrong with it
  }
  const q = u.searchParams;
  const fill = (param: string, variable: string) => {
    if (!q.has(param) && env[variable]) q.set(param, env[variable]!);
  };
  fill('sslmode', 'PGSSLMODE');
  fill('sslrootcert', 'PGSSLROOTCERT');
  fill('sslcert', 'PGSSLCERT');
  fill('sslkey', 'PGSSLKEY');
  if (LIBPQ_SSLMODES.has(q.get('sslmode') ?? '') && !q.has('uselibpqcompat')) q.set('uselibpqcompat', 'true');
  return q.size > 0 || url.includes('?') ? u.href : url;
}

/** SQLSTATEs and socket errors that mean "the database cannot be reached now" (store-additions §7). */
const UNAVAILABLE = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovering)
  '57014', // query_canceled: statement_timeout
  '53300', // too_many_connections
  '55P03', // lock_not_available
]);
const UNAVAILABLE_TEXT = /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error and is not queryable|Connection ended|not connected|the database system is (starting up|shutting down|in recovery mode)/i;

function isUnavailable(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  if (UNAVAILABLE.has(code) || code.startsWith('08')) return true;
  return typeof err?.message === 'string' && UNAVAILABLE_TEXT.test(err.message);
}

/** A short reason for an operator's log line: a code or node-postgres's message (neither holds the password). */
function reasonOf(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const msg = typeof err?.message === 'string' ? err.message : String(e);
  return typeof err?.code === 'string' && !msg.includes(err.code) ? `${err.code}: ${msg}` : msg;
}

/**
 * The pool settings every liteboot connection uses: libpq's reading of the URL, int8 as exact
 * text, and a bound on every wait (connecting, queueing for a connection, each statement), so no
 * request hangs on a database that went away. For `liteboot db` commands that need a pool of their own.
 */
export function pgPoolConfig(o: Pick<PgStoreOptions, 'url' | 'poolSize' | 'statementTimeoutMs' | 'connectTimeoutMs'>): pg.PoolConfig {
  const timeout = o.statementTimeoutMs ?? 4000;
  return {
    connectionString: libpqUrl(o.url),
    max: o.poolSize ?? 16,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 3000,
    idleTimeoutMillis: 30_000,
    statement_timeout: timeout,
    query_timeout: timeout + 500, // the client's own bound, for a server that stopped answering
    application_name: 'liteboot',
    types: TYPES,
  };
}

/**
 * The error a caller sees for a node-postgres failure: DB_UNAVAILABLE for a database out of reach
 * (store-additions §7), BAD_CONFIG for a refused login, a missing database or an unreadable TLS
 * file, one line naming host:port/db (`where`, from describeDatabase) and never the password.
 * Other errors (constraint violations...) pass through, except at open (`opening`): DB_IO.
 */
export function pgFault(e: unknown, where: string, opening = false): Error {
  if (e instanceof LitebootError) return e;
  if ((e as { syscall?: unknown }).syscall === 'open') {
    return new LitebootError('BAD_CONFIG', `cannot use PostgreSQL at ${where}: ${reasonOf(e)}`, { cause: e }); // a TLS file named in the URL
  }
  if (isUnavailable(e)) {
    return new LitebootError('DB_UNAVAILABLE', `${opening ? 'cannot reach' : 'lost'} PostgreSQL at ${where} (${reasonOf(e)}); retry later`, { cause: e });
  }
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('28') || code === '3D000' || code === '42501')) {
    return new LitebootError('BAD_CONFIG', `PostgreSQL at ${where} refused us: ${reasonOf(e)}`, { cause: e });
  }
  if (opening) return new LitebootError('DB_IO', `cannot open PostgreSQL at ${where}: ${reasonOf(e)}`, { cause: e });
  return e instanceof Error ? e : new Error(String(e));
}

/** Row shapes (int8 as text). */
interface CertRow {
  id: string;
  name: string;
  serial: string;
  keyid: Buffer;
  cert: Buffer;
  valid: boolean;
  revoked_at: string | null;
  revoke_reason: number | null;
  not_before: Date | null;
  not_after: Date;
  issued_by: string | null;
  issued_at: string | null;
}
const CERT_COLUMNS = 'id, name, serial, keyid, cert, valid, revoked_at, revoke_reason, not_before, not_after, issued_by, issued_at';

interface CredRow {
  serial: string;
  kind: CredentialKind;
  name: string;
  cert: Buffer;
  recorded_at: string;
  valid: boolean;
  revoked_at: string | null;
  revoke_reason: number | null;
}
const CRED_COLUMNS = 'serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason';

interface RegRow {
  reg_state: string;
  reg_attempts: number;
  reg_last_error: string | null;
  reg_next_at: string | null;
  reg_updated_at: string | null;
}

const ms = (v: string | null): number | undefined => (v === null ? undefined : Number(v));

/** `2027-11-26 19:42:56.495+00:00`: what CADB.db writes into the original's `expiry` column. */
function sqlTime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '+00:00');
}

/** Revokes in the feed's order: the counter's row lock orders the revoking transactions, NOTIFY wakes the other servers on commit. */
const revokeSql = (table: 'certs' | 'credentials') => `
  WITH s AS (
    UPDATE settings SET value = (value::bigint + 1)::text WHERE key = '${REVOCATION_SEQ_KEY}' RETURNING value::bigint AS seq),
  r AS (
    UPDATE ${table} SET valid = false, revoked_at = $2, revoke_reason = $3, revoked_seq = (SELECT seq FROM s)
    WHERE serial = $1 AND valid RETURNING serial)
  SELECT pg_notify('${CHANGES_CHANNEL}', (SELECT seq FROM s)::text) FROM r`;

const FEED_ROW = (table: 'certs' | 'credentials', src: number, where: string) =>
  `SELECT ${src} AS src, seq, serial::text AS serial, revoked_at, revoke_reason, revoked_seq FROM ${table} WHERE NOT valid ${where}`;
const feedSql = (where: string) => `
  SELECT -1 AS src, 0::bigint AS seq, NULL::text AS serial, NULL::bigint AS revoked_at, NULL::integer AS revoke_reason, value::bigint AS revoked_seq
    FROM settings WHERE key = '${REVOCATION_SEQ_KEY}'
  UNION ALL ${FEED_ROW('certs', 0, where)}
  UNION ALL ${FEED_ROW('credentials', 1, where)}
  ORDER BY revoked_seq NULLS FIRST, src, seq`;
// Two texts, not one with "$1 = 0 OR": a generic plan of that could not use the feed's index.
const FEED_ALL = feedSql('');
const FEED_AFTER = feedSql('AND revoked_seq > $1');

/**
 * The store on PostgreSQL, for several servers on one database. Every write is one committed
 * transaction before its promise resolves (synchronous_commit as the server has it: on by
 * default). Faults of the connection become DB_UNAVAILABLE; the pool replaces broken connections
 * by itself, so the store recovers when the database comes back.
 */
export class PgStore implements Store {
  private closed = false;
  private readonly names = new Map<string, string>();
  private readonly watchers = new Set<() => void>();
  private listener: pg.Client | undefined;
  private listening: Promise<void> | undefined;
  private relisten: NodeJS.Timeout | undefined;
  private relistenDelay = 100;
  /** The LISTEN connection a check is running on (one at a time), and the interval of checks. */
  private checking: pg.Client | undefined;
  private listenCheck: NodeJS.Timeout | undefined;
  /** Resolved while the LISTEN connection is up; replaced when it is lost. */
  private up = deferred();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly config: pg.PoolConfig,
    private readonly where: string,
    private readonly readOnly: boolean,
    private readonly log: (m: string) => void,
    private readonly onCommit: ((seconds: number) => void) | undefined,
    private readonly listenCheckMs: number,
  ) {}

  static async open(o: PgStoreOptions): Promise<PgStore> {
    const where = describeDatabase(o.url);
    const config = pgPoolConfig(o);
    const log = o.log ?? (() => {});
    const pool = new pg.Pool(config);
    // An idle connection the server closed (restart, failover): the pool drops it; note it once.
    let lastPoolError = 0;
    pool.on('error', (e) => {
      if (Date.now() - lastPoolError > 5000) log(`lost a connection to PostgreSQL at ${where} (${reasonOf(e)}); reconnecting on demand`);
      lastPoolError = Date.now();
    });
    const store = new PgStore(pool, config, where, o.readOnly ?? false, log, o.onCommit, o.listenCheckMs ?? 30_000);
    try {
      if (o.readOnly) await checkPgSchema(pool);
      else await migrate(config, log, { where });
    } catch (e) {
      await pool.end().catch(() => {});
      throw pgFault(e, where, true);
    }
    return store;
  }

  private fault(e: unknown): Error {
    return pgFault(e, this.where);
  }

  /** A named prepared statement per text: parsed once per connection. */
  private named(text: string): string {
    let n = this.names.get(text);
    if (!n) {
      n = `lb${this.names.size}`;
      this.names.set(text, n);
    }
    return n;
  }

  private async q<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], on: pg.Pool | pg.PoolClient = this.pool): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new LitebootError('DB_IO', 'the database is closed');
    try {
      return await on.query<R>({ name: this.named(text), text, values });
    } catch (e) {
      throw this.fault(e);
    }
  }

  private writable(): void {
    const f = this.writeFailure();
    if (f) throw f;
  }

  /** A write: one statement, committed on return. */
  private async w<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    this.writable();
    const t0 = process.hrtime.bigint();
    const r = await this.q<R>(text, values);
    this.onCommit?.(Number(process.hrtime.bigint() - t0) / 1e9);
    return r;
  }

  async recordIssued(c: IssuedCertificate, binding?: BindingCheck): Promise<void> {
    if (!validSerial(c.serial)) throw new LitebootError('INTERNAL', `serial ${c.serial} is outside 1..2^63-1`);
    const values = [
      c.deviceId,
      c.deviceId.toLowerCase(), // as CADB.db compares: JavaScript's lower case against lower(id)
      c.name,
      c.serial.toString(),
      Buffer.from(c.keyId),
      Buffer.from(c.der),
      sqlTime(c.notAfter),
      c.notBefore.toISOString(),
      c.notAfter.toISOString(),
      c.issuedBy ?? null,
      String((c.issuedAt ?? new Date()).getTime()),
      c.registration ?? 'pending',
      binding ? binding.at.toISOString() : null,
    ];
    let r: pg.QueryResult<{ ok: boolean }>;
    try {
      // One round trip: the check and the insert run in the database under the device's advisory
      // lock (pg-schema.ts, liteboot_record_issued), committed when this resolves.
      r = await this.w<{ ok: boolean }>('SELECT liteboot_record_issued($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) AS ok', values);
    } catch (e) {
      const pe = (e instanceof LitebootError && e.cause ? e.cause : e) as { code?: string; constraint?: string };
      if (pe.code === '23505' && pe.constraint === 'certs_pkey') throw new SerialTakenError(c.serial);
      throw e;
    }
    if (!r.rows[0]?.ok) throw new LitebootError('DEVICE_BOUND', 'device already enrolled with another key');
  }

  async boundKeyIds(deviceId: string, at: Date): Promise<Uint8Array[]> {
    const r = await this.q<{ keyid: Buffer }>('SELECT keyid FROM certs WHERE lower(id) = $1 AND valid AND not_after > $2 ORDER BY seq', [deviceId.toLowerCase(), at.toISOString()]);
    return r.rows.map((x) => new Uint8Array(x.keyid));
  }

  async revoke(serial: bigint, reason: number, at: Date): Promise<boolean> {
    if (!validSerial(serial)) return false;
    const r = await this.w(revokeSql('certs'), [serial.toString(), String(at.getTime()), reason]);
    return r.rows.length > 0;
  }

  async findBySerial(serial: bigint): Promise<CertificateRecord | undefined> {
    if (!validSerial(serial)) return undefined;
    const r = await this.q<CertRow>(`SELECT ${CERT_COLUMNS} FROM certs WHERE serial = $1`, [serial.toString()]);
    return r.rows[0] && certificateOf(r.rows[0]);
  }

  async issuedSince(t: Date): Promise<CertificateRecord[]> {
    const r = await this.q<CertRow>(`SELECT ${CERT_COLUMNS} FROM certs WHERE issued_at >= $1 ORDER BY issued_at, seq`, [String(t.getTime())]);
    return r.rows.map(certificateOf);
  }

  async validSerials(deviceId: string): Promise<bigint[]> {
    const r = await this.q<{ serial: string }>('SELECT serial FROM certs WHERE lower(id) = $1 AND valid ORDER BY seq', [deviceId.toLowerCase()]);
    return r.rows.map((x) => BigInt(x.serial));
  }

  async revocations(): Promise<Revocation[]> {
    const r = await this.q<FeedRow>(FEED_ALL);
    return r.rows.filter((x) => x.src >= 0).sort((a, b) => a.src - b.src || Number(BigInt(a.seq) - BigInt(b.seq))).map(revocationOf);
  }

  async revocationsSince(cursor: bigint): Promise<RevocationPage> {
    const r = cursor <= 0n ? await this.q<FeedRow>(FEED_ALL) : await this.q<FeedRow>(FEED_AFTER, [cursor.toString()]);
    const marker = r.rows.find((x) => x.src === -1);
    const at = marker?.revoked_seq ? BigInt(marker.revoked_seq) : 0n;
    // Rows are in feed order (rows revoked before the feed first); the counter read in the same
    // snapshot is the position: every revocation up to it is committed and in `items`.
    return { items: r.rows.filter((x) => x.src >= 0).map(revocationOf), cursor: at > cursor ? at : cursor };
  }

  watch(onChange: () => void): () => void {
    const w = () => onChange();
    this.watchers.add(w);
    if (!this.listener && !this.listening) this.listen();
    return () => {
      this.watchers.delete(w);
    };
  }

  /** Resolves once the LISTEN connection is up (after watch()): a revocation committed from then on wakes the watchers. */
  watching(): Promise<void> {
    return this.up.promise;
  }

  private notify(): void {
    for (const w of this.watchers) {
      try {
        w();
      } catch {
        /* a watcher's failure is its own */
      }
    }
  }

  /** LISTEN on a dedicated connection; when it is lost, connect again (with backoff) and wake the watchers: something may have been missed. */
  private listen(): void {
    if (this.closed) return;
    const client = new pg.Client({ ...this.config, statement_timeout: undefined, query_timeout: undefined, keepAlive: true });
    const lost = (e?: Error) => {
      if (this.listener !== client) return;
      clearInterval(this.listenCheck);
      this.listener = undefined;
      this.up = deferred();
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      if (this.closed) return;
      this.log(`lost the PostgreSQL LISTEN connection at ${this.where}${e ? ` (${reasonOf(e)})` : ''}; reconnecting`);
      this.scheduleListen();
    };
    client.on('error', (e) => lost(e));
    client.on('end', () => lost());
    client.on('notification', () => this.notify());
    this.listener = client;
    this.listening = (async () => {
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANGES_CHANNEL}`);
        if (this.listener !== client) return;
        if (this.relistenDelay > 100) this.notify(); // reconnected: catch up on what passed meanwhile
        this.relistenDelay = 100;
        clearInterval(this.listenCheck);
        this.listenCheck = setInterval(() => this.checkListener(client, lost), this.listenCheckMs);
        this.listenCheck.unref();
        this.up.resolve();
      } catch (e) {
        if (this.listener === client) lost(e as Error);
      } finally {
        this.listening = undefined;
      }
    })();
  }

  /** One sign of life from the LISTEN connection: an answer to SELECT 1 within a third of the check interval, else `lost`. */
  private checkListener(client: pg.Client, lost: (e?: Error) => void): void {
    if (this.listener !== client || this.checking === client) return;
    this.checking = client;
    const limit = Math.max(1000, Math.floor(this.listenCheckMs / 3));
    const timer = setTimeout(() => {
      // No error will come from a silent connection: drop its socket, or end() would wait on it.
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      lost(new Error(`no answer to a check within ${limit} ms`));
    }, limit);
    timer.unref();
    client.query('SELECT 1').then(
      () => clearTimeout(timer),
      (e: Error) => {
        clearTimeout(timer);
        lost(e);
      },
    ).finally(() => {
      if (this.checking === client) this.checking = undefined;
    });
  }

  private scheduleListen(): void {
    if (this.relisten || this.closed) return;
    const delay = this.relistenDelay;
    this.relistenDelay = Math.min(delay * 2, 5000);
    this.relisten = setTimeout(() => {
      this.relisten = undefined;
      this.listen();
    }, delay);
    this.relisten.unref();
  }

  async nextCounter(key: string): Promise<bigint> {
    const r = await this.w<{ value: string }>(
      `INSERT INTO settings (key, value) VALUES ($1, '1')
       ON CONFLICT (key) DO UPDATE SET value = ((CASE WHEN settings.value ~ '^[0-9]+$' THEN settings.value::numeric ELSE 0 END) + 1)::text
       RETURNING value`,
      [key],
    );
    return BigInt(r.rows[0]!.value);
  }

  async recordCredential(c: Credential): Promise<boolean> {
    const r = await this.w(
      'INSERT INTO credentials (serial, kind, name, cert, recorded_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (serial) DO NOTHING',
      [c.serial.toString(), c.kind, c.name, Buffer.from(c.der), String(c.recordedAt.getTime())],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async findCredential(serial: bigint): Promise<CredentialRecord | undefined> {
    const r = await this.q<CredRow>(`SELECT ${CRED_COLUMNS} FROM credentials WHERE serial = $1`, [serial.toString()]);
    return r.rows[0] && credentialOf(r.rows[0]);
  }

  async credentials(): Promise<CredentialRecord[]> {
    const r = await this.q<CredRow>(`SELECT ${CRED_COLUMNS} FROM credentials ORDER BY seq`);
    return r.rows.map(credentialOf);
  }

  async revokeCredential(serial: bigint, reason: number, at: Date): Promise<boolean> {
    const r = await this.w(revokeSql('credentials'), [serial.toString(), String(at.getTime()), reason]);
    return r.rows.length > 0;
  }

  async allowDevices(ids: readonly string[], by: string, at: Date): Promise<number> {
    const fresh = [...new Set(ids.map((i) => i.toLowerCase()))];
    if (fresh.length === 0) return 0;
    const r = await this.w('INSERT INTO allowed_devices (id, added_at, added_by) SELECT unnest($1::text[]), $2, $3 ON CONFLICT (id) DO NOTHING', [fresh, String(at.getTime()), by]);
    return r.rowCount ?? 0;
  }

  async disallowDevices(ids: readonly string[]): Promise<number> {
    const present = [...new Set(ids.map((i) => i.toLowerCase()))];
    if (present.length === 0) return 0;
    const r = await this.w('DELETE FROM allowed_devices WHERE id = ANY($1::text[])', [present]);
    return r.rowCount ?? 0;
  }

  async isAllowed(deviceId: string): Promise<boolean> {
    const r = await this.q('SELECT 1 FROM allowed_devices WHERE id = $1', [deviceId.toLowerCase()]);
    return r.rows.length > 0;
  }

  async allowedDevices(): Promise<{ id: string; addedAt: Date; addedBy?: string }[]> {
    // COLLATE "C": byte order, as CADB.db sorts, whatever the database's collation.
    const r = await this.q<{ id: string; added_at: string; added_by: string | null }>('SELECT id, added_at, added_by FROM allowed_devices ORDER BY id COLLATE "C"');
    return r.rows.map((x) => ({ id: x.id, addedAt: new Date(Number(x.added_at)), addedBy: x.added_by ?? undefined }));
  }

  async maxSerial(): Promise<bigint> {
    const r = await this.q<{ m: string | null }>('SELECT max(serial) AS m FROM certs');
    return r.rows[0]?.m ? BigInt(r.rows[0].m) : 0n;
  }

  async listDevices(): Promise<DeviceSummary[]> {
    const r = await this.q<RegRow & { id: string; n: string; v: string; enrolled_by: string | null }>(
      `SELECT d.id, count(c.serial) AS n, count(c.serial) FILTER (WHERE c.valid) AS v, d.reg_state, d.reg_attempts, d.reg_last_error, d.reg_next_at, d.reg_updated_at, d.enrolled_by
       FROM devices d LEFT JOIN certs c ON c.id = d.id GROUP BY d.id ORDER BY d.id COLLATE "C"`,
    );
    return r.rows.map((x) => ({
      id: x.id,
      certificates: Number(x.n),
      validCertificates: Number(x.v),
      registration: registrationOf(x),
      enrolledBy: x.enrolled_by ?? undefined,
    }));
  }

  async registration(deviceId: string): Promise<Registration | undefined> {
    const r = await this.q<RegRow>('SELECT reg_state, reg_attempts, reg_last_error, reg_next_at, reg_updated_at FROM devices WHERE id = $1', [deviceId]);
    return r.rows[0] && registrationOf(r.rows[0]);
  }

  async setRegistration(deviceId: string, reg: Registration): Promise<void> {
    await this.w(
      `INSERT INTO devices (id, registered, reg_state, reg_attempts, reg_last_error, reg_next_at, reg_updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET registered = EXCLUDED.registered, reg_state = EXCLUDED.reg_state, reg_attempts = EXCLUDED.reg_attempts,
         reg_last_error = EXCLUDED.reg_last_error, reg_next_at = EXCLUDED.reg_next_at, reg_updated_at = EXCLUDED.reg_updated_at,
         lease_owner = NULL, lease_until = NULL`,
      [deviceId, reg.status === 'registered' ? 1 : 0, reg.status, reg.attempts, reg.lastError ?? null, String(reg.nextAttemptAt ?? 0), reg.updatedAt === undefined ? null : String(reg.updatedAt)],
    );
  }

  async dueRegistrations(now: number, limit: number): Promise<string[]> {
    const r = await this.q<{ id: string }>(`SELECT id FROM devices WHERE reg_state = 'pending' AND reg_next_at <= $1 ORDER BY reg_next_at LIMIT $2`, [String(now), limit]);
    return r.rows.map((x) => x.id);
  }

  async claimRegistrations(now: number, limit: number, owner: string, leaseMs: number): Promise<string[]> {
    if (limit <= 0) return [];
    // SKIP LOCKED: a row another server is claiming this instant is left to it, not waited for.
    const r = await this.w<{ id: string; reg_next_at: string }>(
      `WITH due AS (
         SELECT id FROM devices
         WHERE reg_state = 'pending' AND reg_next_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
         ORDER BY reg_next_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE devices d SET lease_owner = $3, lease_until = $4 FROM due WHERE d.id = due.id RETURNING d.id, d.reg_next_at`,
      [String(now), limit, owner, String(now + leaseMs)],
    );
    return r.rows.sort((a, b) => Number(a.reg_next_at) - Number(b.reg_next_at)).map((x) => x.id);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const r = await this.q<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key]);
    return r.rows[0]?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.w('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [key, value]);
  }

  writeFailure(): Error | undefined {
    if (this.closed) return new LitebootError('DB_IO', 'the database is closed');
    if (this.readOnly) return new LitebootError('DB_READONLY', `PostgreSQL at ${this.where} is open read-only`);
    return undefined;
  }

  async fleetCounts(at: Date, expiringBefore: Date): Promise<FleetCounts> {
    const c = await this.q<{ n: string; e: string }>(
      'SELECT count(*) AS n, count(*) FILTER (WHERE not_after <= $1) AS e FROM certs WHERE valid AND not_after > $2',
      [expiringBefore.toISOString(), at.toISOString()],
    );
    const g = await this.q<{ reg_state: string; n: string }>('SELECT reg_state, count(*) AS n FROM devices GROUP BY reg_state');
    const registrations: Record<string, number> = {};
    for (const x of g.rows) registrations[x.reg_state] = Number(x.n);
    return { valid: Number(c.rows[0]?.n ?? 0), expiring: Number(c.rows[0]?.e ?? 0), registrations };
  }

  async stats(): Promise<{ certificates: number; devices: number }> {
    const r = await this.q<{ c: string; d: string }>('SELECT (SELECT count(*) FROM certs) AS c, (SELECT count(*) FROM devices) AS d');
    return { certificates: Number(r.rows[0]!.c), devices: Number(r.rows[0]!.d) };
  }

  /** The pool, for `liteboot db` commands that need SQL of their own (copy, migrate). */
  get connections(): pg.Pool {
    return this.pool;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.relisten) clearTimeout(this.relisten);
    clearInterval(this.listenCheck);
    this.watchers.clear();
    this.up.resolve(); // nobody waits for a LISTEN that will not come
    await this.listening;
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => {});
    await this.pool.end();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

interface FeedRow {
  src: number;
  seq: string;
  serial: string | null;
  revoked_at: string | null;
  revoke_reason: number | null;
  revoked_seq: string | null;
}

function revocationOf(x: FeedRow): Revocation {
  return { serial: BigInt(x.serial!), revokedAt: x.revoked_at === null ? undefined : new Date(Number(x.revoked_at)), reason: x.revoke_reason ?? undefined };
}

function certificateOf(r: CertRow): CertificateRecord {
  return {
    deviceId: r.id,
    name: r.name,
    serial: BigInt(r.serial),
    keyId: new Uint8Array(r.keyid),
    der: new Uint8Array(r.cert),
    valid: r.valid,
    revokedAt: r.revoked_at === null ? undefined : new Date(Number(r.revoked_at)),
    revokeReason: r.revoke_reason ?? undefined,
    notBefore: r.not_before ?? new Date(0),
    notAfter: r.not_after,
    issuedBy: r.issued_by ?? undefined,
    issuedAt: r.issued_at === null ? undefined : new Date(Number(r.issued_at)),
  };
}

function credentialOf(r: CredRow): CredentialRecord {
  return {
    serial: BigInt(r.serial),
    kind: r.kind,
    name: r.name,
    der: new Uint8Array(r.cert),
    recordedAt: new Date(Number(r.recorded_at)),
    valid: r.valid,
    revokedAt: r.revoked_at === null ? undefined : new Date(Number(r.revoked_at)),
    revokeReason: r.revoke_reason ?? undefined,
  };
}

function registrationOf(r: RegRow): Registration {
  return {
    status: (r.reg_state as RegistrationStatus) ?? 'pending',
    attempts: Number(r.reg_attempts ?? 0),
    lastError: r.reg_last_error ?? undefined,
    nextAttemptAt: ms(r.reg_next_at),
    updatedAt: ms(r.reg_updated_at),
  };
}

export function openPgStore(o: PgStoreOptions): Promise<PgStore> {
  return PgStore.open(o);
}
