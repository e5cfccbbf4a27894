import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { LitebootError } from '../errors.js';
import { DB_FILE_MODE } from './journal.js';

/**
 * One writer at a time: `<db>.lock` holds the writer's PID. A lock whose process is gone is
 * stale and taken over; a live one is refused with the holder's PID.
 *
 * The lock file appears with its content in one step: the PID is written to a temporary file
 * that is then hard-linked to `<db>.lock` (link fails if the name exists, like O_EXCL), so
 * nobody ever reads a lock half-written. Taking over a stale lock is serialised by a second
 * exclusive file named after that very lock file (`<db>.lock.takeover-<id>`): its holder checks
 * again that `<db>.lock` is still the stale file before removing it, so a lock someone else took
 * meanwhile is never removed. PIDs are of this host and this PID namespace: servers in two
 * containers sharing one volume cannot see each other's processes.
 */
/** Lock files this process holds: opening the same database twice in one process is refused too. */
const held = new Set<string>();

/**
 * An empty or partial lock file this young is being written by a process that does not link
 * (an older liteboot, or a filesystem without hard links): held, not stale.
 */
const FRESH_MS = 10_000;
const ATTEMPTS = 200;

interface Seen {
  content: string;
  ino: bigint;
  ctimeNs: bigint;
  mtimeMs: number;
}

export class WriterLock {
  private constructor(
    readonly path: string,
    private readonly ino: bigint,
  ) {}

  static acquire(dbPath: string): WriterLock {
    const path = `${dbPath}.lock`;
    if (held.has(path)) throw inUse(dbPath, process.pid);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const ino = createExclusive(path, `${process.pid}\n`);
      if (ino !== undefined) {
        held.add(path);
        return new WriterLock(path, ino);
      }
      const seen = look(path);
      if (!seen) continue; // released meanwhile: try again
      const holder = pidOf(seen);
      if (holder === undefined) {
        if (Date.now() - seen.mtimeMs < FRESH_MS) {
          throw new LitebootError('DB_LOCKED', `${dbPath} is being locked by another process (${path} is still being written); try again`);
        }
      } else if (holder !== process.pid && isAlive(holder)) {
        // Our own PID in a lock we do not hold is a previous incarnation's (PIDs are reused).
        throw inUse(dbPath, holder);
      }
      // Stale: its process is gone, or it stayed empty long after a crash while writing it.
      if (!removeStale(path, seen, 0)) pause(attempt);
    }
    throw new LitebootError('DB_LOCKED', `could not take the lock ${path}; another process keeps taking it`);
  }

  release(): void {
    held.delete(this.path);
    try {
      // Only the file this lock created: never one another process made after a wrong takeover.
      if (look(this.path)?.ino === this.ino) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

function inUse(dbPath: string, pid: number): LitebootError {
  return new LitebootError('DB_LOCKED', `${dbPath} is in use by process ${pid} (a running liteboot server?); stop it first, or use a read-only command`);
}

/**
 * Creates `path` holding `content` if no file has that name; returns its inode, or undefined
 * when the name is taken.
 */
function createExclusive(path: string, content: string): bigint | undefined {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'wx', DB_FILE_MODE);
    try {
      fchmodSync(fd, DB_FILE_MODE);
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
      return statSync(tmp, { bigint: true }).ino;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return undefined;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    }
    // No hard links here: O_EXCL then write (a reader can see it empty; see FRESH_MS).
    let fd2: number;
    try {
      fd2 = openSync(path, 'wx', DB_FILE_MODE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw e;
    }
    try {
      fchmodSync(fd2, DB_FILE_MODE);
      writeSync(fd2, content);
    } finally {
      closeSync(fd2);
    }
    return statSync(path, { bigint: true }).ino;
  } catch (e) {
    throw new LitebootError('DB_IO', `cannot create the lock file ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
  }
}

function look(path: string): Seen | undefined {
  try {
    const st = statSync(path, { bigint: true });
    const content = readFileSync(path, 'utf8');
    return { content, ino: st.ino, ctimeNs: st.ctimeNs, mtimeMs: Number(st.mtimeMs) };
  } catch {
    return undefined;
  }
}

const same = (a: Seen, b: Seen) => a.content === b.content && a.ino === b.ino && a.ctimeNs === b.ctimeNs;

/** The PID of a whole lock file (`<pid>\n`); undefined for an empty or partial one. */
function pidOf(s: Seen): number | undefined {
  const m = /^([1-9][0-9]{0,9})\n$/.exec(s.content);
  return m ? Number(m[1]) : undefined;
}

/**
 * Removes `path` if it is still the stale file `seen`. Returns false when another process is
 * taking it over (look again later). Whoever holds the takeover file for `seen` is the only one
 * who may remove `seen`; a takeover file left by a process that died holding it is itself stale
 * and removed the same way.
 */
function removeStale(path: string, seen: Seen, depth: number): boolean {
  const id = createHash('sha256').update(`${seen.content}\0${seen.ino}\0${seen.ctimeNs}`).digest('hex').slice(0, 16);
  const marker = `${path}.takeover-${id}`;
  const mine = createExclusive(marker, `${process.pid}\n`);
  if (mine === undefined) {
    const m = look(marker);
    if (!m) return false;
    const pid = pidOf(m);
    const busy = pid === undefined ? Date.now() - m.mtimeMs < FRESH_MS : pid !== process.pid && isAlive(pid);
    if (!busy && depth < 3) removeStale(marker, m, depth + 1);
    return false;
  }
  try {
    const now = look(path);
    if (now && same(now, seen)) unlinkSync(path);
  } finally {
    if (look(marker)?.ino === mine) unlinkSync(marker);
  }
  return true;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Waits a little before looking again (the lock is taken once, at start-up: a blocking wait is fine). */
function pause(attempt: number): void {
  Atomics.wait(sleeper, 0, 0, Math.min(1 + attempt, 20));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
