import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, constants, copyFileSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { open as openAsync, rename as renameAsync } from 'node:fs/promises';
import { dirname } from 'node:path';
import initSqlJs, { type Database, type SqlJsStatic, type SqlValue, type Statement } from 'sql.js';
import { writeFileAtomic } from '../atomic-file.js';
import { LitebootError } from '../errors.js';
import { DB_FILE_MODE, frame, fsyncDir, JournalWriter, listSegments, readSegment, removeFile, segmentPath, truncateSegment, type JournalRecord } from './journal.js';
import { WriterLock } from './lock.js';
import { createBaseSchema, GO_SCHEMA_VERSION, pendingMigrations, runMigrations, schemaVersion } from './schema.js';
import { SerialTakenError, type BindingCheck, type CertificateRecord, type Credential, type CredentialKind, type CredentialRecord, type DeviceSummary, type FleetCounts, type IssuedCertificate, type Registration, type RegistrationStatus, type Revocation, type RevocationPage, type Store } from './types.js';

export interface OpenStoreOptions {
  /** Path of CADB.db. */
  path: string;
  /** Read alongside a running writer: no lock, no writes, a torn journal tail is simply ignored. */
  readOnly?: boolean;
  /**
   * Fold the journal into a new snapshot once it holds this many bytes, or as many bytes as the
   * snapshot itself if that is larger: a snapshot costs time in proportion to its size, so
   * spacing them by as much journal keeps the cost per change constant as the table grows.
   * Default 16 MiB.
   */
  compactBytes?: number;
  /** Operator messages (a torn tail discarded, a migration run). */
  log?: (message: string) => void;
  /** Each journal group commit, once durable, with its duration in seconds (for metrics). */
  onCommit?: (seconds: number) => void;
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0');
const JOURNAL_SEQ_KEY = 'liteboot.journalSeq';
/** How long one in-memory SQLite transaction gathers changes (see commit). */
const TXN_MS = 5;
/** Serials are positive and below 2^63 (SQLite INTEGER); anything else cannot be in the table. */
const MAX_SERIAL = (1n << 63n) - 1n;

let sqlJs: Promise<SqlJsStatic> | undefined;
function loadSqlJs(): Promise<SqlJsStatic> {
  sqlJs ??= initSqlJs();
  return sqlJs;
}

/** The journal's operations: domain changes, replayed on open through the same `apply`. */
type Op =
  | { op: 'cert'; id: string; name: string; serial: string; keyid: string; cert: string; nb: string; na: string; by?: string; at: number; reg?: 'pending' | 'none' }
  | { op: 'revoke'; serial: string; at: number; reason: number }
  | { op: 'reg'; id: string; status: RegistrationStatus; attempts: number; err?: string; next?: number; at?: number }
  | { op: 'set'; key: string; value: string }
  | { op: 'cred'; serial: string; kind: CredentialKind; name: string; cert: string; at: number }
  | { op: 'credrevoke'; serial: string; at: number; reason: number }
  | { op: 'allow'; ids: string[]; by: string; at: number }
  | { op: 'disallow'; ids: string[] };

/** `2027-11-26 19:42:56.495+00:00`, the form the Go server's driver wrote into `expiry`. */
function sqlTime(d: Date): string {
  const iso = d.toISOString(); // `2027-11-26T19:42:56.495Z`, or `+012027-...` beyond year 9999
  const t = iso.indexOf('T');
  return `${iso.slice(0, t)} ${iso.slice(t + 1, -1)}+00:00`;
}

/** How many devices' key bindings SqlJsStore keeps in memory (a few MB). */
const BINDINGS_CACHED = 65_536;

/**
 * A long list of device ids (`device allow --file` with a factory's whole batch) in journal
 * records of at most this many: a record has a size limit (journal.ts), and they share one
 * group commit anyway.
 */
const IDS_PER_RECORD = 10_000;
function chunks(ids: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_RECORD) out.push(ids.slice(i, i + IDS_PER_RECORD));
  return out;
}

/** SQLite's lower(): ASCII letters only, so that a cached key matches what `lower(id) = ?` finds. */
function sqliteLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

function parseSqlTime(s: unknown): Date | undefined {
  if (typeof s !== 'string' || s.length < 19) return undefined;
  // Go wrote nanoseconds; Date takes milliseconds.
  const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?/.exec(s);
  if (!m) return undefined;
  const frac = m[3] ? m[3].slice(0, 4) : '';
  const d = new Date(`${m[1]}T${m[2]}${frac}${m[4] && m[4] !== '+00:00' ? m[4] : 'Z'}`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function validSerial(serial: bigint): boolean {
  return serial > 0n && serial <= MAX_SERIAL;
}

/**
 * CADB.db on sql.js. The database lives in memory; durability comes from the journal (see
 * journal.ts): every change is applied in memory, framed into the journal and fdatasync'd
 * before its promise resolves. The journal is folded into a new CADB.db snapshot (temp file,
 * fsync, rename) when it grows, on open after a crash, and on close.
 */
export class SqlJsStore implements Store {
  private readonly statements = new Map<string, Statement>();
  private seq: number;
  private compacting: Promise<void> | undefined;
  private closed = false;
  private snapshotBytes = 0;
  /** The largest serial in `certs`, once read (kept up to date by apply): a larger one needs no uniqueness lookup. */
  private serialCeiling: bigint | undefined;
  private txnOpen = false;
  /** Set if a COMMIT failed: memory and journal disagree until a restart (endTransaction). */
  private memoryFailure: LitebootError | undefined;
  /**
   * The key bindings of devices looked at recently, so that a binding check (twice per bootstrap
   * enrolment) costs no SQL: lower(id) as SQLite lowers it -> key id (hex) -> the notAfter (ms)
   * of each of the device's unrevoked certificates for that key. Filled from the table on first use,
   * updated by every certificate recorded, emptied by any revocation (rare) and when it holds
   * BINDINGS_CACHED devices. Exact because this process is the only writer (the lock).
   */
  private readonly bindings = new Map<string, Map<string, number[]>>();
  /**
   * The revocation feed, in the order of this process's revocations (one writer per file, so the
   * feed needs no column on disk: a cursor is an index into it). Built on first use.
   */
  private feed: Revocation[] | undefined;
  private readonly watchers = new Set<() => void>();
  /** Registration leases: one process holds CADB.db, so they live in memory. */
  private readonly leases = new Map<string, { owner: string; until: number }>();

  private constructor(
    private readonly db: Database,
    private readonly path: string,
    private journal: JournalWriter | undefined,
    private readonly lock: WriterLock | undefined,
    seq: number,
    private readonly compactBytes: number,
    private readonly log: (m: string) => void,
  ) {
    this.seq = seq;
  }

  private attachJournal(journal: JournalWriter): void {
    this.journal = journal;
    journal.onIdle = () => this.maybeCompact();
  }

  static async open(o: OpenStoreOptions): Promise<SqlJsStore> {
    const SQL = await loadSqlJs();
    const log = o.log ?? (() => {});
    const lock = o.readOnly ? undefined : WriterLock.acquire(o.path);
    try {
      return o.readOnly ? await SqlJsStore.openReader(SQL, o, log) : SqlJsStore.openWriter(SQL, o, lock!, log);
    } catch (e) {
      lock?.release();
      throw e;
    }
  }

  private static load(SQL: SqlJsStatic, path: string): Database {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      throw new LitebootError('DB_IO', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    if (bytes.length < 100 || !bytes.subarray(0, 16).equals(SQLITE_MAGIC)) {
      throw new LitebootError('DB_CORRUPT', `${path} is not a SQLite database (${bytes.length === 0 ? 'it is empty' : 'bad header'}); it was left untouched`);
    }
    try {
      return new SQL.Database(bytes);
    } catch (e) {
      throw new LitebootError('DB_CORRUPT', `${path} cannot be opened as SQLite (${(e as Error).message}); it was left untouched`, { cause: e });
    }
  }

  private static tune(db: Database): void {
    // Durability is the journal's job; sql.js's in-memory file needs no rollback file of its own.
    // This connection is the file's only one (sql.js's file lives in this process's memory): in
    // exclusive mode SQLite keeps its page cache across transactions instead of checking the
    // file for another writer's changes, which made the first lookup after each commit or pause
    // cost 150-200 µs instead of ~40 (the two lookups of every new TLS connection's caller).
    db.run('PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;');
  }

  private static openWriter(SQL: SqlJsStatic, o: OpenStoreOptions, lock: WriterLock, log: (m: string) => void): SqlJsStore {
    const path = o.path;
    removeFile(`${path}.tmp`); // a snapshot torn before its rename
    let db: Database;
    let mustSnapshot = false;
    if (existsSync(path)) {
      try {
        chmodSync(path, DB_FILE_MODE); // one made by the Go server, or under an old umask, was 0644
      } catch {
        /* not ours to change: the next snapshot replaces it with a 0600 file */
      }
      db = SqlJsStore.load(SQL, path);
      const version = schemaVersion(db, path);
      const migrations = pendingMigrations(version, path);
      if (migrations.length > 0) {
        const backup = `${path}.bak-${version}`;
        if (!existsSync(backup)) {
          copyFileSync(path, backup, constants.COPYFILE_EXCL);
          chmodSync(backup, DB_FILE_MODE); // a copy keeps the original's mode (the Go server's was 0644)
          fsyncFile(backup);
          log(`kept the original database as ${backup}`);
        }
        runMigrations(db, migrations);
        log(`migrated ${path} from schema ${version} to ${migrations[migrations.length - 1]!.to}`);
        mustSnapshot = true;
      }
    } else {
      if (listSegments(path).length > 0) {
        throw new LitebootError('DB_CORRUPT', `${path} is missing but its journal (${path}.lbj.*) is there; restore the database file, or move the journal away to start empty`);
      }
      db = new SQL.Database();
      createBaseSchema(db, randomUUID());
      runMigrations(db, pendingMigrations(GO_SCHEMA_VERSION, path));
      mustSnapshot = true;
    }
    SqlJsStore.tune(db);
    const store = new SqlJsStore(db, path, undefined, lock, 0, o.compactBytes ?? 16 * 1024 * 1024, log);
    if (existsSync(path)) store.snapshotBytes = statSync(path).size;
    const segments = listSegments(path);
    const replayed = store.replay(true);
    if (mustSnapshot || segments.length > 0) {
      // Fold what was replayed into a fresh snapshot so the journal starts empty.
      store.writeSnapshotSync();
      for (const s of segments) removeFile(s.path);
      fsyncDir(dirname(path));
    }
    if (replayed > 0) log(`replayed ${replayed} journal records into ${path}`);
    store.attachJournal(JournalWriter.open(segmentPath(path, store.seq + 1)));
    store.journal!.onCommit = o.onCommit;
    return store;
  }

  private static async openReader(SQL: SqlJsStatic, o: OpenStoreOptions, log: (m: string) => void): Promise<SqlJsStore> {
    // A writer may compact between our reading the snapshot and its segments; start over then.
    for (let attempt = 0; ; attempt++) {
      const db = SqlJsStore.load(SQL, o.path);
      try {
        const version = schemaVersion(db, o.path);
        runMigrations(db, pendingMigrations(version, o.path));
        SqlJsStore.tune(db);
        const store = new SqlJsStore(db, o.path, undefined, undefined, 0, 0, log);
        store.replay(false);
        return store;
      } catch (e) {
        db.close();
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        throw e;
      }
    }
  }

  /** Applies journal records newer than the snapshot; returns how many. */
  private replay(writer: boolean): number {
    const snapSeq = Number(this.settingSync(JOURNAL_SEQ_KEY) ?? '0');
    this.seq = snapSeq;
    let applied = 0;
    for (const seg of listSegments(this.path)) {
      const contents = readSegment(seg.path);
      for (const rec of contents.records) {
        if (rec.seq <= snapSeq) continue;
        this.apply(rec as unknown as Op);
        this.seq = Math.max(this.seq, rec.seq);
        applied++;
      }
      if (contents.tornBytes > 0 && writer) {
        this.log(`discarded a torn journal tail of ${contents.tornBytes} bytes in ${seg.path} (a write interrupted by a crash)`);
        truncateSegment(seg.path, contents.validBytes);
      }
    }
    return applied;
  }

  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private run(sql: string, params: SqlValue[]): void {
    const s = this.stmt(sql);
    try {
      s.run(params); // binds, steps and resets
    } catch (e) {
      s.reset();
      throw e;
    }
  }

  private one(sql: string, params: SqlValue[]): SqlValue[] | undefined {
    const s = this.stmt(sql);
    try {
      s.bind(params);
      return s.step() ? s.get() : undefined;
    } finally {
      s.reset();
    }
  }

  private all(sql: string, params: SqlValue[]): SqlValue[][] {
    const s = this.stmt(sql);
    const rows: SqlValue[][] = [];
    try {
      s.bind(params);
      while (s.step()) rows.push(s.get());
    } finally {
      s.reset();
    }
    return rows;
  }

  /** `issued`: a new certificate as it is (else decoded from the record's base64 and dates). */
  private apply(op: Op, issued?: IssuedCertificate): void {
    switch (op.op) {
      case 'cert': {
        const keyId = issued?.keyId ?? Buffer.from(op.keyid, 'base64');
        // A new device is due for registration at once (reg_next_at is set so the due query can use its index).
        this.run('INSERT OR IGNORE INTO devices (id, registered, reg_state, reg_next_at, enrolled_by) VALUES (?, 0, ?, ?, ?)', [op.id, op.reg ?? 'pending', op.at, op.by ?? null]);
        this.run(
          `INSERT INTO certs (id, name, serial, keyid, cert, expiry, valid, not_before, not_after, issued_by, issued_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?6, ?8, ?9)`,
          [op.id, op.name, op.serial, keyId, issued?.der ?? Buffer.from(op.cert, 'base64'), op.na, op.nb, op.by ?? null, op.at],
        );
        if (this.serialCeiling !== undefined) {
          const serial = issued?.serial ?? BigInt(op.serial);
          if (serial > this.serialCeiling) this.serialCeiling = serial;
        }
        const lowerId = sqliteLower(op.id);
        if (this.bindings.has(lowerId)) this.bound(lowerId, Buffer.from(keyId.buffer, keyId.byteOffset, keyId.byteLength).toString('hex'), issued?.notAfter.getTime() ?? parseSqlTime(op.na)?.getTime() ?? 0);
        break;
      }
      case 'revoke':
        this.bindings.clear();
        this.run('UPDATE certs SET valid = 0, revoked_at = ?, revoke_reason = ? WHERE serial = ? AND valid != 0', [op.at, op.reason, op.serial]);
        break;
      case 'reg':
        this.run('INSERT OR IGNORE INTO devices (id, registered, reg_next_at) VALUES (?, 0, 0)', [op.id]);
        this.run(
          `UPDATE devices SET registered = ?, reg_state = ?, reg_attempts = ?, reg_last_error = ?, reg_next_at = ?, reg_updated_at = ? WHERE id = ?`,
          [op.status === 'registered' ? 1 : 0, op.status, op.attempts, op.err ?? null, op.next ?? 0, op.at ?? null, op.id],
        );
        break;
      case 'set':
        this.run('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)', [op.key, op.value]);
        break;
      case 'cred':
        this.run('INSERT OR IGNORE INTO credentials (serial, kind, name, cert, recorded_at) VALUES (?, ?, ?, ?, ?)', [op.serial, op.kind, op.name, Buffer.from(op.cert, 'base64'), op.at]);
        break;
      case 'credrevoke':
        this.run('UPDATE credentials SET valid = 0, revoked_at = ?, revoke_reason = ? WHERE serial = ? AND valid != 0', [op.at, op.reason, op.serial]);
        break;
      case 'allow':
        for (const id of op.ids) this.run('INSERT OR IGNORE INTO allowed_devices (id, added_at, added_by) VALUES (?, ?, ?)', [id, op.at, op.by]);
        break;
      case 'disallow':
        for (const id of op.ids) this.run('DELETE FROM allowed_devices WHERE id = ?', [id]);
        break;
      default:
        throw new LitebootError('DB_CORRUPT', `unknown journal operation ${JSON.stringify((op as { op: unknown }).op)}`);
    }
  }

  /** Applies a change in memory, then makes it durable; resolves once it is on disk. */
  private commit(op: Op, issued?: IssuedCertificate): Promise<void> {
    if (!this.journal) return Promise.reject(new LitebootError('DB_READONLY', `${this.path} is open read-only`));
    if (this.closed) return Promise.reject(new LitebootError('DB_IO', 'the database is closed'));
    if (this.journal.failed) return Promise.reject(this.journal.failed);
    if (this.memoryFailure) return Promise.reject(this.memoryFailure);
    if (!this.txnOpen) {
      // Changes made within TXN_MS share one SQLite transaction: sql.js writes every commit's
      // pages into its in-memory file, which costs more than the insert itself. Durability is
      // the journal's; only export (snapshot, backup, close) needs the transaction ended first.
      this.db.run('BEGIN');
      this.txnOpen = true;
      setTimeout(() => this.endTransaction(), TXN_MS).unref();
    }
    const rec = op as unknown as JournalRecord;
    rec.seq = this.seq + 1;
    let framed: Buffer;
    try {
      framed = frame(rec); // refuses a record too large to read back, before anything changes
      this.apply(op, issued); // throws (and journals nothing) if the change violates a constraint
    } catch (e) {
      return Promise.reject(e);
    }
    this.seq = rec.seq;
    return this.journal.appendFrame(framed);
  }

  recordIssued(c: IssuedCertificate, binding?: BindingCheck): Promise<void> {
    if (!validSerial(c.serial)) return Promise.reject(new LitebootError('INTERNAL', `serial ${c.serial} is outside 1..2^63-1`));
    // Checked and applied in one synchronous step: nothing else runs on this store in between.
    // Serials come in increasing order from above the table's largest (TimestampSerials): one above
    // the largest this store has recorded cannot be in it, and needs no lookup.
    this.serialCeiling ??= this.maxSerialSync();
    if (c.serial <= this.serialCeiling && this.one('SELECT 1 FROM certs WHERE serial = ? LIMIT 1', [c.serial.toString()])) return Promise.reject(new SerialTakenError(c.serial));
    if (binding) {
      // Only other keys' rows: a re-enrolment with the bound key reads none, however many it has.
      const others = this.boundKeyIdsSync(c.deviceId, binding.at, c.keyId);
      if (others.length > 0 && !this.hasValidKey(c.deviceId, binding.at, c.keyId)) {
        return Promise.reject(new LitebootError('DEVICE_BOUND', 'device already enrolled with another key'));
      }
    }
    return this.commit({
      op: 'cert',
      id: c.deviceId,
      name: c.name,
      serial: c.serial.toString(),
      keyid: Buffer.from(c.keyId).toString('base64'),
      cert: Buffer.from(c.der).toString('base64'),
      nb: sqlTime(c.notBefore),
      na: sqlTime(c.notAfter),
      by: c.issuedBy,
      at: (c.issuedAt ?? new Date()).getTime(),
      reg: c.registration,
    }, c);
  }

  async revoke(serial: bigint, reason: number, at: Date): Promise<boolean> {
    if (!validSerial(serial)) return false;
    const row = this.one('SELECT valid FROM certs WHERE serial = ? LIMIT 1', [serial.toString()]);
    if (!row || row[0] === 0) return false;
    const feedBuilt = this.feed !== undefined; // else the feed, built later from the table, has it
    await this.commit({ op: 'revoke', serial: serial.toString(), at: at.getTime(), reason });
    this.revoked(feedBuilt, { serial, revokedAt: new Date(at.getTime()), reason });
    return true;
  }

  /** After a durable revocation: feed it and tell the watchers. */
  private revoked(feedBuilt: boolean, r: Revocation): void {
    if (feedBuilt) this.feed!.push(r);
    for (const w of this.watchers) {
      setImmediate(() => {
        try {
          w();
        } catch {
          /* a watcher's failure is its own */
        }
      });
    }
  }

  async revocationsSince(cursor: bigint): Promise<RevocationPage> {
    this.feed ??= this.revocationsSync();
    const from = cursor < 0n ? 0 : cursor > BigInt(this.feed.length) ? this.feed.length : Number(cursor);
    return { items: this.feed.slice(from), cursor: BigInt(this.feed.length) };
  }

  watch(onChange: () => void): () => void {
    const w = () => onChange();
    this.watchers.add(w);
    return () => {
      this.watchers.delete(w);
    };
  }

  async nextCounter(key: string): Promise<bigint> {
    // Read and written in one synchronous step, so two callers never get the same value.
    const current = this.settingSync(key);
    const next = (current !== undefined && /^\d+$/.test(current) ? BigInt(current) : 0n) + 1n;
    await this.commit({ op: 'set', key, value: next.toString() });
    return next;
  }

  /** Notes in the cache (if the device is in it) an unrevoked certificate for `keyHex` until `notAfter`. */
  private bound(lowerId: string, keyHex: string, notAfter: number): void {
    const keys = this.bindings.get(lowerId);
    if (!keys) return;
    const times = keys.get(keyHex);
    if (times) times.push(notAfter);
    else keys.set(keyHex, [notAfter]);
  }

  /** The device's bound keys (see `bindings`), from the table the first time. */
  private bindingsOf(deviceId: string): Map<string, number[]> {
    const lowerId = deviceId.toLowerCase(); // compared with SQLite's lower(id), as every device query does
    let keys = this.bindings.get(lowerId);
    if (!keys) {
      if (this.bindings.size >= BINDINGS_CACHED) this.bindings.clear();
      keys = new Map();
      this.bindings.set(lowerId, keys);
      for (const r of this.all('SELECT keyid, not_after, expiry FROM certs WHERE lower(id) = ? AND valid != 0', [lowerId])) {
        this.bound(lowerId, Buffer.from(r[0] as Uint8Array).toString('hex'), (parseSqlTime(r[1]) ?? parseSqlTime(r[2]))?.getTime() ?? 0);
      }
    }
    return keys;
  }

  private boundKeyIdsSync(deviceId: string, at: Date, except?: Uint8Array): Uint8Array[] {
    const now = at.getTime();
    const skip = except && Buffer.from(except).toString('hex');
    const out: Uint8Array[] = [];
    // One entry per certificate, as the table query gave them (grouped by key here).
    for (const [k, times] of this.bindingsOf(deviceId)) if (k !== skip) for (const t of times) if (t > now) out.push(Buffer.from(k, 'hex'));
    return out;
  }

  /** Does the device hold a certificate for this key that is unrevoked and unexpired at `at`? */
  private hasValidKey(deviceId: string, at: Date, keyId: Uint8Array): boolean {
    const now = at.getTime();
    return (this.bindingsOf(deviceId).get(Buffer.from(keyId).toString('hex')) ?? []).some((t) => t > now);
  }

  async boundKeyIds(deviceId: string, at: Date, except?: Uint8Array): Promise<Uint8Array[]> {
    return this.boundKeyIdsSync(deviceId, at, except);
  }

  async findBySerial(serial: bigint): Promise<CertificateRecord | undefined> {
    if (!validSerial(serial)) return undefined;
    const r = this.one(
      `SELECT id, name, CAST(serial AS TEXT), keyid, cert, valid, revoked_at, revoke_reason, not_before, not_after, expiry, issued_by, issued_at
       FROM certs WHERE serial = ? LIMIT 1`,
      [serial.toString()],
    );
    return r ? certificateOf(r) : undefined;
  }

  async issuedSince(t: Date): Promise<CertificateRecord[]> {
    return this.all(
      `SELECT id, name, CAST(serial AS TEXT), keyid, cert, valid, revoked_at, revoke_reason, not_before, not_after, expiry, issued_by, issued_at
       FROM certs WHERE issued_at >= ? ORDER BY issued_at, rowid`,
      [t.getTime()],
    ).map(certificateOf);
  }

  /** Every device certificate, oldest first, or one device's (for `cert list`). */
  async listCertificates(deviceId?: string): Promise<CertificateRecord[]> {
    return this.all(
      `SELECT id, name, CAST(serial AS TEXT), keyid, cert, valid, revoked_at, revoke_reason, not_before, not_after, expiry, issued_by, issued_at
       FROM certs${deviceId === undefined ? '' : ' WHERE lower(id) = ?'} ORDER BY rowid`,
      deviceId === undefined ? [] : [deviceId.toLowerCase()],
    ).map(certificateOf);
  }

  async validSerials(deviceId: string): Promise<bigint[]> {
    return this.all('SELECT CAST(serial AS TEXT) FROM certs WHERE lower(id) = ? AND valid != 0 ORDER BY rowid', [deviceId.toLowerCase()]).map(
      (r) => BigInt(String(r[0])),
    );
  }

  async revocations(): Promise<Revocation[]> {
    return this.revocationsSync();
  }

  private revocationsSync(): Revocation[] {
    const rows = [
      ...this.all('SELECT CAST(serial AS TEXT), revoked_at, revoke_reason FROM certs WHERE valid = 0 ORDER BY rowid', []),
      ...this.all('SELECT serial, revoked_at, revoke_reason FROM credentials WHERE valid = 0 ORDER BY rowid', []),
    ];
    return rows.map((r) => ({
      serial: BigInt(String(r[0])),
      revokedAt: typeof r[1] === 'number' ? new Date(r[1]) : undefined,
      reason: typeof r[2] === 'number' ? r[2] : undefined,
    }));
  }

  async recordCredential(c: Credential): Promise<boolean> {
    if (this.one('SELECT 1 FROM credentials WHERE serial = ?', [c.serial.toString()])) return false;
    await this.commit({ op: 'cred', serial: c.serial.toString(), kind: c.kind, name: c.name, cert: Buffer.from(c.der).toString('base64'), at: c.recordedAt.getTime() });
    return true;
  }

  private credentialOf(r: SqlValue[]): CredentialRecord {
    return {
      serial: BigInt(String(r[0])),
      kind: r[1] as CredentialKind,
      name: String(r[2]),
      der: r[3] as Uint8Array,
      recordedAt: new Date(Number(r[4])),
      valid: r[5] !== 0,
      revokedAt: typeof r[6] === 'number' ? new Date(r[6]) : undefined,
      revokeReason: typeof r[7] === 'number' ? r[7] : undefined,
    };
  }

  async findCredential(serial: bigint): Promise<CredentialRecord | undefined> {
    const r = this.one('SELECT serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason FROM credentials WHERE serial = ?', [serial.toString()]);
    return r ? this.credentialOf(r) : undefined;
  }

  async credentials(): Promise<CredentialRecord[]> {
    return this.all('SELECT serial, kind, name, cert, recorded_at, valid, revoked_at, revoke_reason FROM credentials ORDER BY rowid', []).map((r) => this.credentialOf(r));
  }

  async revokeCredential(serial: bigint, reason: number, at: Date): Promise<boolean> {
    const row = this.one('SELECT valid FROM credentials WHERE serial = ?', [serial.toString()]);
    if (!row || row[0] === 0) return false;
    const feedBuilt = this.feed !== undefined;
    await this.commit({ op: 'credrevoke', serial: serial.toString(), at: at.getTime(), reason });
    this.revoked(feedBuilt, { serial, revokedAt: new Date(at.getTime()), reason });
    return true;
  }

  async allowDevices(ids: readonly string[], by: string, at: Date): Promise<number> {
    const fresh = [...new Set(ids.map((i) => i.toLowerCase()))].filter((id) => !this.one('SELECT 1 FROM allowed_devices WHERE id = ?', [id]));
    await Promise.all(chunks(fresh).map((part) => this.commit({ op: 'allow', ids: part, by, at: at.getTime() })));
    return fresh.length;
  }

  async disallowDevices(ids: readonly string[]): Promise<number> {
    const present = [...new Set(ids.map((i) => i.toLowerCase()))].filter((id) => this.one('SELECT 1 FROM allowed_devices WHERE id = ?', [id]));
    await Promise.all(chunks(present).map((part) => this.commit({ op: 'disallow', ids: part })));
    return present.length;
  }

  async isAllowed(deviceId: string): Promise<boolean> {
    return this.one('SELECT 1 FROM allowed_devices WHERE id = ?', [deviceId.toLowerCase()]) !== undefined;
  }

  async allowedDevices(): Promise<{ id: string; addedAt: Date; addedBy?: string }[]> {
    return this.all('SELECT id, added_at, added_by FROM allowed_devices ORDER BY id', []).map((r) => ({
      id: String(r[0]),
      addedAt: new Date(Number(r[1])),
      addedBy: typeof r[2] === 'string' ? r[2] : undefined,
    }));
  }

  async maxSerial(): Promise<bigint> {
    return this.maxSerialSync();
  }

  private maxSerialSync(): bigint {
    const r = this.one('SELECT CAST(max(serial) AS TEXT) FROM certs', []);
    return r && r[0] !== null ? BigInt(String(r[0])) : 0n;
  }

  async listDevices(): Promise<DeviceSummary[]> {
    return this.all(
      `SELECT d.id, count(c.serial), coalesce(sum(c.valid != 0), 0), d.reg_state, d.reg_attempts, d.reg_last_error, d.reg_next_at, d.reg_updated_at, d.enrolled_by
       FROM devices d LEFT JOIN certs c ON c.id = d.id GROUP BY d.id ORDER BY d.id`,
      [],
    ).map((r) => ({
      id: String(r[0]),
      certificates: Number(r[1]),
      validCertificates: Number(r[2]),
      registration: registrationOf(r.slice(3, 8)),
      enrolledBy: typeof r[8] === 'string' ? r[8] : undefined,
    }));
  }

  async registration(deviceId: string): Promise<Registration | undefined> {
    const r = this.one('SELECT reg_state, reg_attempts, reg_last_error, reg_next_at, reg_updated_at FROM devices WHERE id = ?', [deviceId]);
    return r ? registrationOf(r) : undefined;
  }

  setRegistration(deviceId: string, reg: Registration): Promise<void> {
    this.leases.delete(deviceId);
    return this.commit({ op: 'reg', id: deviceId, status: reg.status, attempts: reg.attempts, err: reg.lastError, next: reg.nextAttemptAt, at: reg.updatedAt });
  }

  async dueRegistrations(now: number, limit: number): Promise<string[]> {
    return this.all(
      `SELECT id FROM devices WHERE reg_state = 'pending' AND reg_next_at <= ? ORDER BY reg_next_at LIMIT ?`,
      [now, limit],
    ).map((r) => String(r[0]));
  }

  async claimRegistrations(now: number, limit: number, owner: string, leaseMs: number): Promise<string[]> {
    if (limit <= 0) return [];
    const claimed: string[] = [];
    // Due rows in order, skipping those another owner holds; the scan goes on past them.
    const s = this.stmt(`SELECT id FROM devices WHERE reg_state = 'pending' AND reg_next_at <= ? ORDER BY reg_next_at`);
    try {
      s.bind([now]);
      while (claimed.length < limit && s.step()) {
        const id = String(s.get()[0]);
        const lease = this.leases.get(id);
        if (lease && lease.until > now) continue;
        claimed.push(id);
      }
    } finally {
      s.reset();
    }
    for (const id of claimed) this.leases.set(id, { owner, until: now + leaseMs });
    return claimed;
  }

  private settingSync(key: string): string | undefined {
    // The Go schema's `value STRING` has NUMERIC affinity: a decimal is stored as an INTEGER, which
    // sql.js would hand back as a JavaScript number (inexact past 2^53). As text, it is exact.
    const r = this.one('SELECT CAST(value AS TEXT) FROM settings WHERE key = ?', [key]);
    return r ? String(r[0]) : undefined;
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.settingSync(key);
  }

  setSetting(key: string, value: string): Promise<void> {
    return this.commit({ op: 'set', key, value });
  }

  writeFailure(): Error | undefined {
    if (!this.journal) return new LitebootError('DB_READONLY', `${this.path} is open read-only`);
    if (this.closed) return new LitebootError('DB_IO', 'the database is closed');
    return this.journal.failed ?? this.memoryFailure;
  }

  async fleetCounts(at: Date, expiringBefore: Date): Promise<FleetCounts> {
    const now = sqlTime(at);
    const c = this.one('SELECT count(*), coalesce(sum(not_after <= ?), 0) FROM certs WHERE valid != 0 AND not_after > ?', [sqlTime(expiringBefore), now]);
    const registrations: Record<string, number> = {};
    for (const r of this.all('SELECT reg_state, count(*) FROM devices GROUP BY reg_state', [])) registrations[String(r[0])] = Number(r[1]);
    return { valid: Number(c?.[0] ?? 0), expiring: Number(c?.[1] ?? 0), registrations };
  }

  async stats(): Promise<{ certificates: number; devices: number }> {
    const c = this.one('SELECT count(*) FROM certs', []);
    const d = this.one('SELECT count(*) FROM devices', []);
    return { certificates: Number(c?.[0] ?? 0), devices: Number(d?.[0] ?? 0) };
  }

  private endTransaction(): void {
    if (!this.txnOpen) return;
    this.txnOpen = false;
    try {
      this.db.run('COMMIT');
    } catch (e) {
      // SQLite rolled the open transaction back by itself (out of memory): the changes of the
      // last TXN_MS are in the journal but no longer in memory. Take no more writes; a restart
      // replays the journal.
      this.memoryFailure = new LitebootError('DB_IO', `the in-memory database lost a transaction (${(e as Error).message}); restart the server (the journal has every change)`, { cause: e });
      this.log(this.memoryFailure.message);
    }
  }

  /** Serialises the database with the journal position it includes. */
  private exportWithSeq(): Uint8Array {
    this.endTransaction();
    this.run('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)', [JOURNAL_SEQ_KEY, String(this.seq)]);
    const bytes = this.db.export();
    SqlJsStore.tune(this.db); // older sql.js releases reopen the database in export(), resetting pragmas
    this.snapshotBytes = bytes.length;
    return bytes;
  }

  private writeSnapshotSync(): void {
    const bytes = this.exportWithSeq();
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', DB_FILE_MODE);
    try {
      fchmodSync(fd, DB_FILE_MODE);
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    fsyncDir(dirname(this.path));
  }

  private async writeSnapshot(): Promise<void> {
    const journal = this.journal!;
    // New changes go to a new segment; the old ones are deleted once the snapshot holds them.
    const old = await journal.rotate(segmentPath(this.path, this.seq + 1));
    const bytes = this.exportWithSeq();
    const tmp = `${this.path}.tmp`;
    const fh = await openAsync(tmp, 'w', DB_FILE_MODE);
    try {
      await fh.chmod(DB_FILE_MODE);
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await renameAsync(tmp, this.path);
    fsyncDir(dirname(this.path));
    // Never the segment being written: rotate() keeps it when nothing was recorded since it opened.
    const live = journal.segmentPath;
    for (const s of listSegments(this.path)) {
      if (s.path <= old && s.path !== live) removeFile(s.path);
    }
  }

  private maybeCompact(): void {
    if (this.compacting || this.closed || !this.journal || this.journal.failed) return;
    if (this.journal.bytes < Math.max(this.compactBytes, this.snapshotBytes)) return;
    this.compact().catch((e: Error) => this.log(`compaction failed, will retry: ${e.message}`));
  }

  /**
   * Writes a consistent copy of the database as it stands (the journal applied) to `path`: a
   * plain SQLite file, 0600, written aside and renamed. Works on a read-only store beside a
   * running server.
   */
  backupTo(path: string): { bytes: number; certificates: number } {
    this.endTransaction();
    const bytes = this.db.export();
    SqlJsStore.tune(this.db); // older sql.js releases reopen the database in export(), resetting pragmas
    writeFileAtomic(path, bytes, DB_FILE_MODE, true);
    const c = this.one('SELECT count(*) FROM certs', []);
    return { bytes: bytes.length, certificates: Number(c?.[0] ?? 0) };
  }

  /** Folds the journal into a new snapshot now (also used by tests and the crash harness). */
  compact(): Promise<void> {
    if (!this.journal) return Promise.resolve();
    this.compacting ??= this.writeSnapshot().finally(() => {
      this.compacting = undefined;
    });
    return this.compacting;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.journal) {
      await this.journal.drain();
      await this.compacting;
      this.closed = true;
      if (!this.journal.failed) {
        await this.writeSnapshot();
      }
      this.journal.close();
      // The final snapshot holds everything: the (empty) current segment can go too.
      if (!this.journal.failed) removeFile(this.journal.segmentPath);
    }
    this.closed = true;
    this.endTransaction();
    for (const s of this.statements.values()) s.free();
    this.statements.clear();
    this.db.close();
    this.lock?.release();
  }
}

/** A certs row in the column order of findBySerial's SELECT. */
function certificateOf(r: SqlValue[]): CertificateRecord {
  return {
    deviceId: String(r[0]),
    name: String(r[1]),
    serial: BigInt(String(r[2])),
    keyId: r[3] as Uint8Array,
    der: r[4] as Uint8Array,
    valid: r[5] !== 0,
    revokedAt: typeof r[6] === 'number' ? new Date(r[6]) : undefined,
    revokeReason: typeof r[7] === 'number' ? r[7] : undefined,
    notBefore: parseSqlTime(r[8]) ?? new Date(0),
    notAfter: parseSqlTime(r[9]) ?? parseSqlTime(r[10]) ?? new Date(0),
    issuedBy: typeof r[11] === 'string' ? r[11] : undefined,
    issuedAt: typeof r[12] === 'number' ? new Date(r[12]) : undefined,
  };
}

function registrationOf(r: SqlValue[]): Registration {
  return {
    status: (r[0] as RegistrationStatus) ?? 'pending',
    attempts: Number(r[1] ?? 0),
    lastError: typeof r[2] === 'string' ? r[2] : undefined,
    nextAttemptAt: typeof r[3] === 'number' ? r[3] : undefined,
    updatedAt: typeof r[4] === 'number' ? r[4] : undefined,
  };
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function openStore(o: OpenStoreOptions): Promise<SqlJsStore> {
  return SqlJsStore.open(o);
}
