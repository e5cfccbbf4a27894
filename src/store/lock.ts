import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { LitebootError } from '../errors.js';

/**
 * One writer at a time: `<db>.lock` holds the writer's PID. A lock whose process is gone is
 * stale and taken over; a live one is refused with the holder's PID.
 */
/** Lock files this process holds: opening the same database twice in one process is refused too. */
const held = new Set<string>();

export class WriterLock {
  private constructor(readonly path: string) {}

  static acquire(dbPath: string): WriterLock {
    const path = `${dbPath}.lock`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        held.add(path);
        return new WriterLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new LitebootError('DB_IO', `cannot create the lock file ${path}: ${(e as Error).message}`, { cause: e });
        }
      }
      const holder = readHolder(path);
      // Our own PID in a lock we do not hold is a previous incarnation's (PIDs are reused).
      if (held.has(path) || (holder !== undefined && holder !== process.pid && isAlive(holder))) {
        throw new LitebootError(
          'DB_LOCKED',
          `${dbPath} is in use by process ${holder ?? process.pid} (a running liteboot server?); stop it first, or use a read-only command`,
        );
      }
      // Stale (its process is gone) or unreadable (a crash while writing it): take it over.
      try {
        unlinkSync(path);
      } catch {
        /* another process took it over first; try again */
      }
    }
    throw new LitebootError('DB_LOCKED', `could not take the lock ${path}; another process keeps taking it`);
  }

  release(): void {
    held.delete(this.path);
    try {
      if (readHolder(this.path) === process.pid) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

function readHolder(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
