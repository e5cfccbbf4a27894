import { execFile, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
export const BIN = join(ROOT, 'bin', 'liteboot.js');
/** State written by the original Go server (see its README); copied into temp dirs before use. */
export const FIXTURE = resolve(ROOT, 'test', 'fixtures', 'go-liteboot-small');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a user would, in `cwd`. */
export function liteboot(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; input?: string | Buffer }): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, CAHOSTNAME: '', ...opts.env },
    input: opts.input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command and returns its outcome (never throws on a non-zero exit). */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Result & { out: Buffer } {
  const r = spawnSync(cmd, args, { timeout: 60_000, ...opts });
  const out = Buffer.isBuffer(r.stdout) ? r.stdout : Buffer.from(r.stdout ?? '');
  return { code: r.status ?? -1, stdout: out.toString('utf8'), stderr: String(r.stderr ?? ''), out };
}

export function runAsync(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): Promise<Result> {
  return new Promise((res) => {
    const child = execFile(cmd, args, { cwd: opts.cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** A fresh temporary directory, removed when the test's `after` hook calls the returned cleanup. */
export function tempDir(prefix = 'liteboot-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openssl(args: string[], opts: SpawnSyncOptions = {}): Result & { out: Buffer } {
  return run('openssl', args, opts);
}
