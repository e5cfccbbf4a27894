import { closeSync, fchmodSync, fdatasync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LitebootError } from '../errors.js';
import { crc32 } from './crc32.js';

/**
 * The write-ahead journal beside CADB.db: append-only segment files of framed records.
 *
 *   segment = MAGIC, frame*
 *   frame   = u32 length (big-endian) | u32 CRC-32 of payload | payload (UTF-8 JSON, has `seq`)
 *
 * A change is durable once its frame is written and fdatasync'd; concurrent appends share one
 * write and one fdatasync (group commit). A torn frame (short, or CRC mismatch) ends the valid
 * part of a segment; the writer truncates it away on open.
 *
 * Segment names are `<db>.lbj.<16-digit number>`, never `<db>-journal` or `<db>-wal`, which the
 * sqlite3 tool would take for its own hot journal and "roll back" into CADB.db.
 */
export const MAGIC = Buffer.from('LBJRNL01');

/**
 * The mode of CADB.db, its journal, lock and backups, whatever the umask: they hold every
 * device's certificate and registration state, for the server's user only.
 */
export const DB_FILE_MODE = 0o600;
const MAX_FRAME = 16 * 1024 * 1024;

export interface JournalRecord {
  seq: number;
  [key: string]: unknown;
}

export interface Segment {
  path: string;
  number: number;
}

export function segmentPath(dbPath: string, n: number): string {
  return `${dbPath}.lbj.${String(n).padStart(16, '0')}`;
}

export function listSegments(dbPath: string): Segment[] {
  const prefix = basename(dbPath) + '.lbj.';
  const dir = dirname(dbPath);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(prefix) && /^\d{16}$/.test(n.slice(prefix.length)))
    .map((n) => ({ path: join(dir, n), number: Number(n.slice(prefix.length)) }))
    .sort((a, b) => a.number - b.number);
}

export interface SegmentContents {
  records: JournalRecord[];
  /** Bytes up to the end of the last whole frame. */
  validBytes: number;
  /** Bytes after that: a torn or corrupt tail. */
  tornBytes: number;
}

export function frame(record: JournalRecord): Buffer {
  const json = JSON.stringify(record);
  const len = Buffer.byteLength(json);
  const out = Buffer.allocUnsafe(8 + len);
  out.write(json, 8);
  out.writeUInt32BE(len, 0);
  out.writeUInt32BE(crc32(out.subarray(8)), 4);
  return out;
}

/** Reads a segment; everything from the first bad frame on counts as torn. */
export function readSegment(path: string): SegmentContents {
  const data = readFileSync(path);
  if (data.length === 0) return { records: [], validBytes: 0, tornBytes: 0 };
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    // A crash between creating a segment and writing its header leaves a prefix of MAGIC.
    if (MAGIC.subarray(0, data.length).equals(data.subarray(0, MAGIC.length))) return { records: [], validBytes: 0, tornBytes: data.length };
    throw new LitebootError('DB_CORRUPT', `${path} is not a liteboot journal segment; move it away to open the database`);
  }
  const records: JournalRecord[] = [];
  let off = MAGIC.length;
  while (off + 8 <= data.length) {
    const len = data.readUInt32BE(off);
    const crc = data.readUInt32BE(off + 4);
    if (len === 0 || len > MAX_FRAME || off + 8 + len > data.length) break;
    const payload = data.subarray(off + 8, off + 8 + len);
    if (crc32(payload) !== crc) break;
    let rec: JournalRecord;
    try {
      rec = JSON.parse(payload.toString('utf8')) as JournalRecord;
    } catch {
      break;
    }
    if (typeof rec.seq !== 'number') break;
    records.push(rec);
    off += 8 + len;
  }
  return { records, validBytes: off, tornBytes: data.length - off };
}

/** Cuts a torn tail off a segment so new frames follow the last whole one. */
export function truncateSegment(path: string, validBytes: number): void {
  const fd = openSync(path, 'r+');
  try {
    ftruncateSync(fd, validBytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** The open segment and the group-commit writer over it. */
export class JournalWriter {
  private fd: number;
  private path: string;
  private size: number;
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
  private flushing = false;
  private idle: (() => void)[] = [];
  private failure: Error | undefined;
  private rotation: { path: string; resolve: (old: string) => void; reject: (e: Error) => void } | undefined;
  /** Called after a flush with nothing left to write: the store's cue to consider compacting. */
  onIdle: (() => void) | undefined;
  /** Called when a group commit is durable, with its duration (write to fdatasync done) in seconds. */
  onCommit: ((seconds: number) => void) | undefined;

  private constructor(fd: number, path: string, size: number) {
    this.fd = fd;
    this.path = path;
    this.size = size;
  }

  /** Opens `path` for appending, creating it (with the magic header) if it is new or empty. */
  static open(path: string): JournalWriter {
    const fd = openSync(path, 'a', DB_FILE_MODE);
    let size: number;
    try {
      fchmodSync(fd, DB_FILE_MODE);
      size = readFileSync(path).length;
      if (size === 0) {
        writeSync(fd, MAGIC);
        fsyncSync(fd);
        fsyncDir(dirname(path));
        size = MAGIC.length;
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return new JournalWriter(fd, path, size);
  }

  get bytes(): number {
    return this.size + this.pending.reduce((n, b) => n + b.length, 0);
  }

  get segmentPath(): string {
    return this.path;
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  /** Queues a record; resolves when it is on disk. */
  append(record: JournalRecord): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.pending.push(frame(record));
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.flushing) {
      this.flushing = true;
      // Let every append made in this turn of the event loop join the same write and fdatasync.
      setImmediate(() => this.flush());
    }
    return done;
  }

  private flush(): void {
    if (this.rotation) this.switchSegment();
    if (this.pending.length === 0) {
      this.flushing = false;
      const idle = this.idle;
      this.idle = [];
      for (const f of idle) f();
      this.onIdle?.();
      return;
    }
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const waiters = this.waiters;
    this.pending = [];
    this.waiters = [];
    const fd = this.fd;
    const fail = (e: Error) => {
      this.failure = new LitebootError('DB_IO', `cannot write the journal ${this.path}: ${e.message}; the database is now read-only until restart`, { cause: e });
      for (const w of [...waiters, ...this.waiters]) w.reject(this.failure);
      this.waiters = [];
      this.pending = [];
      this.flushing = false;
      for (const f of this.idle.splice(0)) f();
    };
    // The write lands in the page cache in microseconds; only the fdatasync is worth a
    // thread-pool round trip.
    const started = performance.now();
    try {
      writeAllSync(fd, buf);
    } catch (e) {
      return fail(e as Error);
    }
    fdatasync(fd, (err) => {
      if (err) return fail(err);
      this.onCommit?.((performance.now() - started) / 1000);
      this.size += buf.length;
      for (const w of waiters) w.resolve();
      this.flush();
    });
  }

  /** Resolves when nothing is queued or being written. */
  drain(): Promise<void> {
    if (!this.flushing && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Switches to a new segment once the write in flight (if any) is done. Frames queued but not
   * yet written go to the new segment. Returns the old segment's path.
   */
  rotate(newPath: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.rotation = { path: newPath, resolve, reject };
      // Between writes the flush loop switches; with no write in flight, switch now.
      if (!this.flushing) this.switchSegment();
    });
  }

  private switchSegment(): void {
    const r = this.rotation!;
    this.rotation = undefined;
    try {
      const next = JournalWriter.open(r.path);
      const old = this.path;
      closeSync(this.fd);
      this.fd = next.fd;
      this.path = next.path;
      this.size = next.size;
      r.resolve(old);
    } catch (e) {
      r.reject(e as Error);
    }
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

function writeAllSync(fd: number, buf: Buffer): void {
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
}

export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
