import { Command, Option } from 'clipanion';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CertsDir } from '../ca/certs-dir.js';
import { isLitebootError, LitebootError } from '../errors.js';

/**
 * certs-dir.js pulls in the ASN.1 schemas (the slowest part of start-up); commands that only talk
 * to a server never need it, so it is loaded in execute() by the commands that do (`usesCertsDir`).
 */
let CertsDirClass: typeof CertsDir | undefined;

/**
 * What every liteboot command shares: where its files are, `--verbose`, and how a failure is
 * reported (one line on stderr and exit 1; a usage mistake exits 2; stacks only with --verbose).
 */
export abstract class BaseCommand extends Command {
  certs = Option.String('--certs', 'certs', { description: 'Directory of certificates and keys' });
  verbose = Option.Boolean('--verbose', false, { description: 'Show stack traces on errors' });

  protected abstract run(): Promise<number | void>;

  /** False for a command that never calls certsDir() (it starts faster without the ASN.1 modules). */
  static usesCertsDir = true;

  /** Validates options shared by a family of commands before run() (e.g. `--wire`), so no command forgets. */
  protected checkOptions(): void {}

  protected certsDir(): CertsDir {
    if (!CertsDirClass) throw new Error(`${this.constructor.name} calls certsDir() but says usesCertsDir = false`);
    return new CertsDirClass(resolve(this.certs));
  }

  protected print(line = ''): void {
    this.context.stdout.write(line + '\n');
  }

  /**
   * Every `--json` output of the CLI goes through here: 64-bit integers (bigint) become decimal
   * strings, since jq 1.6 and JavaScript numbers round them; keys are camelCase by convention.
   */
  protected printJson(value: unknown): void {
    this.context.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  }

  async execute(): Promise<number> {
    try {
      if ((this.constructor as typeof BaseCommand).usesCertsDir && !CertsDirClass) CertsDirClass = (await import('../ca/certs-dir.js')).CertsDir;
      this.checkOptions();
      return (await this.run()) ?? 0;
    } catch (e) {
      return this.report(e);
    }
  }

  protected report(e: unknown): number {
    const err = this.context.stderr;
    if (isLitebootError(e)) {
      err.write(`liteboot: ${withoutErrno(e.message)}\n`);
      if (this.verbose && e.stack) err.write(e.stack + '\n');
      return e.code === 'USAGE' ? 2 : 1;
    }
    const plain = userErrorMessage(e);
    if (plain !== undefined) {
      err.write(`liteboot: ${plain}\n`);
      if (this.verbose && e instanceof Error && e.stack) err.write(e.stack + '\n');
      return 1;
    }
    err.write(`liteboot: internal error: ${e instanceof Error ? e.message : String(e)}${this.verbose ? '' : ' (run with --verbose for details)'}\n`);
    if (this.verbose && e instanceof Error && e.stack) err.write(e.stack + '\n');
    return 1;
  }
}

/** Parses a positive whole-number option, or says which option is wrong (a usage mistake). */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw usage(`${flag} takes a whole number >= 1, not "${value}"`);
  }
  return Number(value);
}

export function usage(message: string): LitebootError {
  return new LitebootError('USAGE', message);
}

const FS_WRITES = new Set(['write', 'mkdir', 'rename', 'unlink', 'copyfile', 'symlink', 'chmod', 'fchmod', 'fsync', 'rmdir', 'link', 'utime', 'ftruncate']);
const FS_REASONS: Record<string, string> = {
  ENOENT: 'not found',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EEXIST: 'already exists',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
  EMFILE: 'too many open files',
  EBUSY: 'busy',
  EIO: 'input/output error',
};

/** The reason of a file-system error in words ("is a directory"), or undefined for anything else. */
export function fsReason(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? FS_REASONS[code] : undefined;
}

/** "cannot read <path>: is a directory": a file-system error as a user reads it (no errno). */
export function fsErrorMessage(e: unknown, path?: string, verb?: 'read' | 'write'): string | undefined {
  const reason = fsReason(e);
  if (reason === undefined) return undefined;
  const err = e as NodeJS.ErrnoException;
  const v = verb ?? (err.syscall && FS_WRITES.has(err.syscall) ? 'write' : 'read');
  return `cannot ${v} ${path ?? err.path ?? 'a file'}: ${reason}`;
}

/** Reads a file a user named, or fails with one line saying why (never an errno). `-` is standard input. */
export function readUserFile(path: string, what?: string): Buffer {
  try {
    return path === '-' ? readFileSync(0) : readFileSync(path);
  } catch (e) {
    const msg = fsErrorMessage(e, what ?? (path === '-' ? 'standard input' : path), 'read');
    throw new LitebootError(fsReason(e) === 'not found' ? 'FILE_MISSING' : 'FILE_UNREADABLE', msg ?? `cannot read ${path}`, { cause: e });
  }
}

/**
 * A failure that is the user's (a file that is not there, a key OpenSSL cannot decode) but did not
 * come as a LitebootError: the one line to print instead of "internal error".
 */
export function userErrorMessage(e: unknown): string | undefined {
  const fs = fsErrorMessage(e);
  if (fs !== undefined) return fs;
  const err = e as { code?: unknown; message?: unknown; library?: unknown; reason?: unknown } | undefined;
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = typeof err?.message === 'string' ? err.message : '';
  if (code.startsWith('ERR_OSSL') || /DECODER routines|PEM routines|error:[0-9A-F]{8}:/.test(message) || code === 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE') {
    return 'a key or certificate file is not one liteboot can read (PEM or DER; run `liteboot inspect FILE` on the files in the certs directory)';
  }
  return undefined;
}

/** `--wire`: the request format the device-side commands send. */
export function parseWire(value: string): 'cbor' | 'json' {
  if (value !== 'cbor' && value !== 'json') throw usage(`--wire must be cbor or json, not "${value}"`);
  return value;
}

/** RFC 5280 §5.3.1 CRLReason, by name; 7 is unused. */
export const CRL_REASONS: Record<string, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

/**
 * `--reason`: an RFC 5280 CRLReason name (any case) or code. The server accepts 0-6, 9 and 10;
 * removeFromCRL (8) belongs to delta CRLs and 7 is unassigned, so both are refused here already.
 */
export function parseReason(value: string): number {
  const byName = Object.entries(CRL_REASONS).find(([n]) => n.toLowerCase() === value.toLowerCase());
  const code = byName ? byName[1] : /^[0-9]{1,2}$/.test(value) ? Number(value) : undefined;
  const names = Object.entries(CRL_REASONS).filter(([, c]) => c !== 8).map(([n, c]) => `${n} (${c})`).join(', ');
  if (code === undefined || code > 10) throw usage(`--reason must be an RFC 5280 reason: ${names}; not "${value}"`);
  if (code === 7) throw usage('--reason 7 is not an RFC 5280 reason (the code is unassigned)');
  if (code === 8) throw usage('--reason removeFromCRL (8) is only for delta CRLs; liteboot does not accept it');
  return code;
}

/** Decimal serials from arguments and, for `-`, standard input (one a line; blank lines skipped). */
export function listArgs(args: string[], readStdin: () => string = () => readUserFile('-').toString('utf8')): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (a === '-') out.push(...readStdin().split('\n').map((l) => l.trim()).filter((l) => l !== ''));
    else out.push(a);
  }
  return out;
}

/**
 * A credential file the client presents or trusts, checked before it reaches TLS (where a bad one
 * fails with an OpenSSL string and no file name). `fix` says what to do when it is missing.
 */
export function readCredential(path: string, what: string, kind: 'certificate' | 'key', fix: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    if (fsReason(e) === 'not found') throw new LitebootError('FILE_MISSING', `${what} is not at ${path}: ${fix} (or pass --certs DIR)`);
    throw new LitebootError('FILE_UNREADABLE', fsErrorMessage(e, path, 'read') ?? `cannot read ${path}`, { cause: e });
  }
  try {
    if (kind === 'key') createPrivateKey(data);
    else new X509Certificate(data);
  } catch (e) {
    if (kind === 'key' && (e as { code?: string }).code === 'ERR_MISSING_PASSPHRASE') throw new LitebootError('KEY_ENCRYPTED', `${path} is an encrypted key; liteboot needs it unencrypted here`);
    throw new LitebootError(kind === 'key' ? 'BAD_KEY' : 'BAD_CERT', kind === 'key' ? `${path} is not a private key (PEM/DER) liteboot can read` : `${path} is not a certificate (PEM/DER) liteboot can read`, { cause: e });
  }
  return data;
}

/** "ENOENT: no such file or directory, open '/x'" inside a message, as words ("not found"). */
export function withoutErrno(message: string): string {
  return message.replace(/\b(E[A-Z]{2,}): [^,]*, [a-z]+(?: '[^']*')?(?: -> '[^']*')?/g, (all, code: string) => FS_REASONS[code] ?? all);
}
