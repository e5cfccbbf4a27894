import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readdirSync, readFileSync, renameSync, write, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LitebootError } from '../errors.js';
import { fsyncDir } from '../store/journal.js';
import { WriterLock } from '../store/lock.js';

/**
 * The audit trail: one JSON line per event an operator may have to answer for (who issued this
 * certificate, who revoked it, which credential was made, ...). Each line carries the SHA-256 of
 * the line before it (`prev`) and of itself (`hash`), so `verifyAudit` finds a line that was
 * edited, removed or reordered. Concurrent appends share one write and one fdatasync.
 *
 * When `append` resolves: a revocation, credential, allowlist or registration line is durable
 * (fdatasync'd) first. An `issue` line is written (the page cache: it survives the process being
 * killed) and fdatasync'd within SYNC_ISSUE_MS, with the next durable line, or at close: its
 * certificate's record is durable in the store before the certificate leaves (the store's own
 * fdatasync), and if the machine loses power before the line reaches the disk, the next start
 * writes it again from that record (Authority.recoverAudit, marked `recovered`). One fdatasync
 * per certificate instead of two: ~12% of the server's rate on a 2-core machine.
 *
 * One process writes a log file (several servers need one file each).
 */
export type AuditValue = string | number | boolean | null | readonly string[];
export type AuditEvent = { event: string } & Record<string, AuditValue>;

/** Where the authority and the registrar write their audit trail; resolves once the line is written (AuditLog: durable, except `issue` lines, synced within 200 ms). */
export interface AuditSink {
  append(event: AuditEvent): Promise<void>;
}

export interface AuditRecord {
  seq: number;
  time: string;
  event: string;
  [field: string]: AuditValue;
}

const GENESIS = '0'.repeat(64);

/** Events whose line need not be on disk before append resolves (see AuditLog): what the store's record can rebuild. */
const RECOVERABLE = new Set(['issue']);
/** How long an `issue` line may stay in the page cache only. */
export const SYNC_ISSUE_MS = 200;

// One-shot hashing (crypto.hash, Node 20.12 and later) costs half of a Hash object for a line.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;
const sha256Hex = (data: string): string => (oneShot ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex'));

/** The hash of a line: its `prev` and every field but `hash`, in the order written. */
function lineHash(rec: Record<string, unknown>): string {
  const { hash: _omit, ...rest } = rec;
  void _omit;
  return sha256Hex(JSON.stringify(rest));
}

/** Rotated files are `<name>.<first seq, 12 digits>`; the live one is `<name>`. */
export function auditFiles(path: string): string[] {
  const dir = dirname(path);
  const prefix = basename(path) + '.';
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [path];
  }
  const rotated = names.filter((n) => n.startsWith(prefix) && /^\d{12}$/.test(n.slice(prefix.length))).sort();
  return [...rotated.map((n) => join(dir, n)), path];
}

interface Pending {
  line: string;
  resolve: () => void;
  reject: (e: Error) => void;
  /** The line may resolve once written (RECOVERABLE). */
  lazy: boolean;
}

export class AuditLog implements AuditSink {
  private fd: number;
  private bytes: number;
  private seq: number;
  private prev: string;
  private queue: Pending[] = [];
  private flushing = false;
  private scheduled = false;
  private failed: Error | undefined;
  /** Lines written since the last fdatasync, and the timer that will sync them. */
  private unsynced = false;
  /**
   * Whether a line of this log is on disk (it had lines when opened, or a sync succeeded since):
   * only then may `issue` lines wait for their sync. recoverAudit needs a last line to start from;
   * a log that lost every line would not be recovered.
   */
  private anchored = false;
  /** Says what went wrong where no caller waits (a background sync). */
  private warn: ((m: string) => void) | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  /** The time of the last line when the log was opened (undefined for an empty log). */
  lastTime: Date | undefined;

  /** `<path>.lock`: this process writes the log (see open). */
  private lock: WriterLock | undefined;

  private constructor(
    private readonly path: string,
    fd: number,
    bytes: number,
    seq: number,
    prev: string,
    private readonly rotateBytes: number,
    private readonly clock: () => Date,
  ) {
    this.fd = fd;
    this.bytes = bytes;
    this.seq = seq;
    this.prev = prev;
  }

  /**
   * Opens (or creates, 0600) the log and finds where the chain stands. A last line torn by a crash
   * (no newline) is cut off and reported through `log`; if it was an `issue` line already
   * answered (the machine stopped before its sync), recoverAudit writes it again.
   */
  static open(path: string, o: { rotateBytes?: number; clock?: () => Date; log?: (m: string) => void } = {}): AuditLog {
    // One writer a log: two servers appending to one file would fork its hash chain (two
    // servers on one database, started from one directory, would otherwise share audit.jsonl).
    let lock: WriterLock;
    try {
      lock = WriterLock.acquire(path);
    } catch (e) {
      if (e instanceof LitebootError && e.code === 'DB_LOCKED') {
        const pid = /process (\d+)/.exec(e.message)?.[1];
        throw new LitebootError('DB_LOCKED', `the audit log ${path} is being written by another liteboot server${pid ? ` (process ${pid})` : ''}: each server needs its own; set audit_log = "PATH" in [server], or start each server from its own directory`, { cause: e });
      }
      throw e;
    }
    try {
      const log = AuditLog.openLocked(path, o);
      log.lock = lock;
      return log;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  private static openLocked(path: string, o: { rotateBytes?: number; clock?: () => Date; log?: (m: string) => void }): AuditLog {
    let fd: number;
    try {
      fd = openSync(path, 'a+', 0o600);
    } catch (e) {
      throw new LitebootError('FILE_UNREADABLE', `cannot open the audit log ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, { cause: e });
    }
    const data = readFileSync(path);
    // A new file: its directory entry on disk too, or a lost entry would lose every line.
    if (data.length === 0) fsyncDir(dirname(path));
    let end = data.length;
    if (end > 0 && data[end - 1] !== 0x0a) {
      end = data.lastIndexOf(0x0a) + 1;
      ftruncateSync(fd, end);
      o.log?.(`audit: cut off a last line torn by a crash (${data.length - end} bytes) in ${path}`);
    }
    let seq = 0;
    let prev = GENESIS;
    let lastTime: Date | undefined;
    const lastLine = data.subarray(0, end).toString('utf8').trimEnd().split('\n').pop();
    const source = lastLine ? lastLine : lastOfRotated(path);
    if (source) {
      try {
        const rec = JSON.parse(source) as { seq: number; hash: string; time: string };
        seq = rec.seq;
        prev = rec.hash;
        lastTime = new Date(rec.time);
      } catch {
        closeSync(fd);
        throw new LitebootError('FILE_UNREADABLE', `the audit log ${path} ends in a line that is not JSON; check it with \`liteboot audit verify\``);
      }
    }
    const log = new AuditLog(path, fd, fstatSync(fd).size, seq, prev, o.rotateBytes ?? 64 * 1024 * 1024, o.clock ?? (() => new Date()));
    log.lastTime = lastTime && !Number.isNaN(lastTime.getTime()) ? lastTime : undefined;
    log.anchored = log.lastTime !== undefined;
    log.warn = o.log;
    return log;
  }

  /** Serials of the `issue` lines written at or after `t`, in the newest two files (for recovery at start-up). */
  issuedSerialsSince(t: Date): Set<string> {
    const since = t.toISOString();
    const out = new Set<string>();
    for (const r of readRecords(auditFiles(this.path).slice(-2))) if (r.event === 'issue' && r.time >= since && typeof r.serial === 'string') out.add(r.serial);
    return out;
  }

  /** Appends one event; resolves once it is on disk (an `issue` line: once written, synced within SYNC_ISSUE_MS). */
  append(e: AuditEvent): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    const rec: Record<string, unknown> = { seq: ++this.seq, time: this.clock().toISOString(), ...e, prev: this.prev };
    let line: string;
    if ('hash' in rec) {
      rec.hash = lineHash(rec);
      line = JSON.stringify(rec) + '\n';
    } else {
      // The same bytes as hashing the record and serialising it with `hash` last, with one
      // JSON.stringify instead of two (this runs for every certificate).
      const body = JSON.stringify(rec);
      rec.hash = sha256Hex(body);
      line = `${body.slice(0, -1)},"hash":"${rec.hash as string}"}\n`;
    }
    this.prev = rec.hash as string;
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject, lazy: this.anchored && RECOVERABLE.has(e.event) });
      if (!this.scheduled && !this.flushing) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (this.flushing || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const buf = Buffer.from(batch.map((p) => p.line).join(''));
    const fail = (err: Error) => {
      this.flushing = false;
      this.failed = this.writeFailure(err);
      for (const p of [...batch, ...this.queue.splice(0)]) p.reject(this.failed);
    };
    const written = () => {
      this.bytes += buf.length;
      for (const p of batch) p.resolve();
      if (this.bytes >= this.rotateBytes) this.rotate();
      if (this.queue.length > 0) this.flush();
    };
    if (batch.every((p) => p.lazy)) {
      // Into the page cache at once (microseconds, no thread-pool round trip); synced soon.
      try {
        for (let off = 0; off < buf.length; ) off += writeSync(this.fd, buf, off, buf.length - off);
      } catch (e) {
        return fail(e as Error);
      }
      this.unsynced = true;
      this.syncTimer ??= setTimeout(() => this.syncSoon(), SYNC_ISSUE_MS);
      return written();
    }
    this.flushing = true;
    write(this.fd, buf, 0, buf.length, null, (err) =>
      err
        ? fail(err)
        : fdatasync(this.fd, (e) => {
            if (e) return fail(e);
            this.flushing = false;
            this.synced();
            written();
          }),
    );
  }

  private writeFailure(err: Error): LitebootError {
    return new LitebootError('DB_IO', `cannot write the audit log ${this.path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err });
  }

  /** Every line written so far is on disk: no timer needed. */
  private synced(): void {
    this.anchored = true;
    this.unsynced = false;
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
  }

  /** SYNC_ISSUE_MS after an `issue` line was written: fdatasync, unless a durable line's flush does it meanwhile. */
  private syncSoon(): void {
    this.syncTimer = undefined;
    if (!this.unsynced || this.failed) return;
    if (this.flushing) {
      this.syncTimer = setTimeout(() => this.syncSoon(), SYNC_ISSUE_MS);
      return;
    }
    this.flushing = true;
    this.unsynced = false;
    fdatasync(this.fd, (e) => {
      this.flushing = false;
      if (e) {
        this.failed = this.writeFailure(e);
        this.warn?.(`audit: ${this.failed.message}; issue lines written in the last ${SYNC_ISSUE_MS} ms may not be on disk, and the log takes no more lines until restart`);
        for (const p of this.queue.splice(0)) p.reject(this.failed);
        return;
      }
      if (!this.unsynced) this.anchored = true;
      if (this.queue.length > 0) this.flush();
    });
  }

  /** Lines written but not yet synced go to disk now (before a rotation or a close). */
  private syncNowIfNeeded(): void {
    if (!this.unsynced) return;
    fdatasyncSync(this.fd);
    this.synced();
  }

  /** Moves the full file aside as `<name>.<its first seq>`; the chain goes on in a new file. */
  private rotate(): void {
    try {
      this.syncNowIfNeeded();
      const first = (JSON.parse(readFileSync(this.path, 'utf8').split('\n', 1)[0]!) as { seq: number }).seq;
      renameSync(this.path, `${this.path}.${String(first).padStart(12, '0')}`);
      closeSync(this.fd);
      this.fd = openSync(this.path, 'a+', 0o600);
      this.bytes = 0;
    } catch (e) {
      this.failed = new LitebootError('DB_IO', `cannot rotate the audit log ${this.path}: ${(e as Error).message}`, { cause: e });
      this.warn?.(`audit: ${this.failed.message}; the log takes no more lines until restart`);
    }
  }

  /** Waits for what is queued, then closes the file. */
  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) {
      await new Promise((r) => setImmediate(r));
      if (!this.flushing && this.queue.length > 0) this.flush();
    }
    try {
      this.syncNowIfNeeded();
    } finally {
      clearTimeout(this.syncTimer);
      closeSync(this.fd);
      this.lock?.release();
      this.lock = undefined;
    }
  }
}

function lastOfRotated(path: string): string | undefined {
  const files = auditFiles(path);
  const older = files[files.length - 2];
  if (!older) return undefined;
  return readFileSync(older, 'utf8').trimEnd().split('\n').pop() || undefined;
}

export interface AuditVerdict {
  ok: boolean;
  lines: number;
  files: string[];
  /** The first line that does not hold: its file, 1-based line number, and why. */
  bad?: { file: string; line: number; why: string };
}

/** Checks the chain through every file of a log (rotated ones first). */
export function verifyAudit(path: string): AuditVerdict {
  const files = auditFiles(path);
  let prev = GENESIS;
  let seq = 0;
  let lines = 0;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new LitebootError('FILE_MISSING', `cannot read the audit log ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not readable'}`);
    }
    const rows = text.split('\n');
    if (rows[rows.length - 1] === '') rows.pop();
    for (let i = 0; i < rows.length; i++) {
      const bad = (why: string): AuditVerdict => ({ ok: false, lines, files, bad: { file, line: i + 1, why } });
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(rows[i]!) as Record<string, unknown>;
      } catch {
        return bad('not a JSON line');
      }
      if (rec.hash !== lineHash(rec)) return bad('its contents do not match its hash: the line was edited');
      if (rec.seq !== seq + 1) return bad(`sequence ${String(rec.seq)} follows ${seq}: lines were removed or reordered`);
      if (rec.prev !== prev) return bad('it does not follow the line before it: lines were removed, reordered or replaced');
      prev = rec.hash as string;
      seq = rec.seq as number;
      lines++;
    }
  }
  return { ok: true, lines, files };
}

/** Every record of a log, oldest first, for `audit show`. */
export function readAudit(path: string): AuditRecord[] {
  return readRecords(auditFiles(path));
}

/** The records of these files, in order; unreadable files and lines are skipped (verify reports them). */
function readRecords(files: readonly string[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const file of files) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n')) {
      if (!row) continue;
      try {
        out.push(JSON.parse(row) as AuditRecord);
      } catch {
        /* verify reports it */
      }
    }
  }
  return out;
}
