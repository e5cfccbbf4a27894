import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes a file so that a reader sees the old or the new contents, never a mix: temp, fsync,
 * rename, fsync the directory. `exactMode`: the file gets `mode` whatever the umask (and a
 * temp file left by a crash is reused at that mode), for files that must stay 0600.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, exactMode = false): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    if (exactMode) fchmodSync(fd, mode);
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
