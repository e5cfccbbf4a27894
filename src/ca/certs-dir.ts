import { chmodSync, closeSync, existsSync, fchmodSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { certificateSignedBy, parseCertificate, type ParsedCertificate } from '../asn1/certificate.js';
import { keyIdentifier } from '../asn1/extensions.js';
import { isEncryptedPrivateKeyPem, keysMatch, parsePrivateKeyPem } from '../asn1/keys.js';
import { OID } from '../asn1/oids.js';
import { parsePemBlocks } from '../asn1/pem.js';
import { keySigner } from '../asn1/signer.js';
import { LitebootError } from '../errors.js';
import { BOOTSTRAP_OU, OPERATOR_OU, type Issuer } from './profiles.js';

/** File names in the certs directory, as the original's scripts wrote them (CLI.md "Files"). */
export const FILES = {
  caCert: 'CA.crt',
  caKey: 'CA.key',
  caCString: 'ca_crt.txt',
  serverCert: 'SERVER.crt',
  serverKey: 'SERVER.key',
  bootstrapCert: 'BOOTSTRAP.crt',
  bootstrapKey: 'BOOTSTRAP.key',
  bootstrapCString: 'bootstrap_crt.txt',
  bootstrapKeyC: 'bootstrap_key.txt',
  ocspCert: 'OCSP.crt',
  ocspKey: 'OCSP.key',
} as const;

/** A bootstrap or operator credential found in the certs directory. */
export interface CredentialFile {
  file: string;
  kind: 'bootstrap' | 'operator';
  /** The certificate's CN. */
  name: string;
  serial: bigint;
  der: Buffer;
}

export interface NewFile {
  name: string;
  data: string | Uint8Array;
  /** 0o600 for private keys. */
  mode: number;
}

/** A certificate file and what it holds. */
export interface LoadedCertificate {
  path: string;
  pem: string;
  cert: ParsedCertificate;
}

/** The CA's certificate and key, loaded and checked to belong together. */
export interface CaMaterial {
  cert: LoadedCertificate;
  key: KeyObject;
  issuer: Issuer;
}

export class CertsDir {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, name);
  }

  has(name: string): boolean {
    return existsSync(this.path(name));
  }

  private read(name: string, what: string, hint: string): string {
    const p = this.path(name);
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new LitebootError('FILE_MISSING', `${what} not found at ${p}; ${hint}`);
      throw new LitebootError('FILE_UNREADABLE', `cannot read ${what} at ${p}: ${(e as Error).message}`, { cause: e });
    }
  }

  loadCertificate(name: string, what: string, hint: string): LoadedCertificate {
    const pem = this.read(name, what, hint);
    const blocks = parsePemBlocks(pem).filter((b) => b.label === 'CERTIFICATE');
    if (blocks.length === 0) throw new LitebootError('BAD_CERT', `${this.path(name)} holds no PEM certificate`);
    try {
      return { path: this.path(name), pem, cert: parseCertificate(blocks[0]!.der) };
    } catch (e) {
      throw new LitebootError('BAD_CERT', `${this.path(name)}: ${(e as Error).message}`, { cause: e });
    }
  }

  loadPrivateKey(name: string, what: string, hint: string, passphrase?: string): KeyObject {
    return parsePrivateKeyPem(this.read(name, what, hint), this.path(name), passphrase);
  }

  /** Is CA.key an encrypted PKCS#8 key? False when it is missing (loading it says so). */
  caKeyEncrypted(): boolean {
    try {
      return isEncryptedPrivateKeyPem(readFileSync(this.path(FILES.caKey), 'utf8'));
    } catch {
      return false;
    }
  }

  /**
   * Loads CA.crt and CA.key, including a CA made by the original Go tool. An encrypted CA.key
   * needs `passphrase`; without it, or with a wrong one, the message says so and nothing more.
   */
  loadCa(passphrase?: string): CaMaterial {
    const hint = 'run `liteboot setup-ca` first (or pass --certs DIR)';
    const cert = this.loadCertificate(FILES.caCert, 'the CA certificate', hint);
    let key: KeyObject;
    try {
      key = this.loadPrivateKey(FILES.caKey, 'the CA key', hint, passphrase);
    } catch (e) {
      const keyPath = this.path(FILES.caKey);
      if (e instanceof LitebootError && e.code === 'KEY_ENCRYPTED') {
        throw new LitebootError('KEY_ENCRYPTED', `the CA key ${keyPath} is encrypted: give its password with --password-file FILE or $LITEBOOT_CA_PASSWORD`);
      }
      if (e instanceof LitebootError && e.code === 'BAD_PASSWORD') {
        throw new LitebootError('BAD_PASSWORD', `wrong password for the CA key ${keyPath}`, { cause: e.cause });
      }
      throw e;
    }
    if (!keysMatch(key, cert.cert.publicKey)) {
      throw new LitebootError('KEY_MISMATCH', `${this.path(FILES.caKey)} is not the key of ${cert.path}`);
    }
    // AKI in issued certificates must equal the CA's SKI for path building (RFC 5280 §4.2.1.1).
    const ski = cert.cert.extensions.find((e) => e.oid === OID.subjectKeyIdentifier);
    const keyId = ski ? Buffer.from(ski.value.replace(/:/g, ''), 'hex') : keyIdentifier(cert.cert.spki);
    return {
      cert,
      key,
      issuer: { subjectDer: cert.cert.subjectDer, notAfter: cert.cert.notAfter, keyId, spki: cert.cert.spki, signer: keySigner(key) },
    };
  }

  /**
   * The bootstrap and operator certificates here (`BOOTSTRAP*.crt`, `OPERATOR-*.crt`), for the
   * names no device may take. A file that does not parse is skipped: it names no one.
   */
  credentialCertificates(): LoadedCertificate[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: LoadedCertificate[] = [];
    for (const n of names.filter((n) => /^(BOOTSTRAP.*|OPERATOR-.*)\.crt$/.test(n)).sort()) {
      try {
        out.push(this.loadCertificate(n, 'a credential', ''));
      } catch {
        /* not a certificate: nothing to reserve */
      }
    }
    return out;
  }

  /**
   * Refuses to serve with a key others could read or swap: CA.key and SERVER.key must be regular
   * files (not symbolic links) with no group or other permissions, and the directory (which holds
   * CA.crt, the trust anchor for client certificates) must not be writable by group or others.
   * Each refusal says the command that fixes it.
   */
  checkPermissions(): void {
    let dir;
    try {
      dir = statSync(this.dir);
    } catch {
      return; // missing: loadCa says so, with its hint
    }
    if (dir.mode & 0o022) {
      throw new LitebootError('FILE_INSECURE', `${this.dir} is writable by ${who(dir.mode, 0o020, 0o002)} (mode ${octal(dir.mode)}), so anyone could replace CA.crt; run \`chmod go-w ${this.dir}\``);
    }
    // SERVER.key too: with it, anyone could pose as this server to every device that enrols.
    for (const [name, what] of [[FILES.caKey, 'the CA key'], [FILES.serverKey, 'the server key']] as const) {
      const keyPath = this.path(name);
      let key;
      try {
        key = lstatSync(keyPath);
      } catch {
        continue; // missing: loading it says so, with a hint
      }
      if (key.isSymbolicLink()) {
        throw new LitebootError('FILE_INSECURE', `${keyPath} is a symbolic link; ${what} must be a regular file here: run \`cp --remove-destination "$(readlink -f ${keyPath})" ${keyPath} && chmod 600 ${keyPath}\``);
      }
      if (key.mode & 0o077) {
        throw new LitebootError('FILE_INSECURE', `${keyPath} is open to ${who(key.mode, 0o070, 0o007)} (mode ${octal(key.mode)}); run \`chmod 600 ${keyPath}\``);
      }
    }
  }

  /**
   * Replaces a file so that a reader sees the old or the new contents, never a mix: written
   * aside (O_EXCL, `mode` whatever the umask), fsync'd, renamed over, then the directory fsync'd.
   */
  replace(name: string, data: string | Uint8Array, mode: number): string {
    const p = this.path(name);
    const tmp = this.path(`.${name}.tmp-${process.pid}`);
    try {
      const fd = openSync(tmp, 'wx', mode);
      try {
        fchmodSync(fd, mode);
        writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, p);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        /* never written, or already renamed */
      }
      throw new LitebootError('FILE_UNREADABLE', `cannot replace ${p}: ${(e as Error).message}`, { cause: e });
    }
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return p;
  }

  /**
   * Renames the given files that exist to `NAME.<UTC time>.bak` (never over another backup) and
   * returns [old, backup] pairs, for `moveBack` if what replaces them cannot be written.
   */
  moveAside(names: readonly string[], now: Date): [string, string][] {
    const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const moved: [string, string][] = [];
    try {
      for (const n of this.existing(names)) {
        let bak = this.path(`${n}.${stamp}.bak`);
        for (let i = 2; existsSync(bak); i++) bak = this.path(`${n}.${stamp}-${i}.bak`);
        renameSync(this.path(n), bak);
        moved.push([this.path(n), bak]);
      }
    } catch (e) {
      this.moveBack(moved);
      throw new LitebootError('FILE_UNREADABLE', `cannot move ${names.join(', ')} aside in ${this.dir}: ${(e as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied' : (e as Error).message}`, { cause: e });
    }
    return moved;
  }

  /** Undoes `moveAside`. */
  moveBack(moved: readonly [string, string][]): void {
    for (const [p, bak] of moved) {
      try {
        renameSync(bak, p);
      } catch {
        /* best effort: the backup keeps the old contents */
      }
    }
  }

  /** Removes a file this command wrote (best effort: a leftover is harmless, a failure here must not hide the real one). */
  remove(name: string): void {
    try {
      unlinkSync(this.path(name));
    } catch {
      /* already gone */
    }
  }

  /** Names of the given files that already exist. */
  existing(names: readonly string[]): string[] {
    return names.filter((n) => this.has(n));
  }

  /**
   * Writes files that must not exist yet. Either all are written (each fsync'd, keys 0600) or
   * none: a failure part-way removes what this call wrote.
   */
  writeNew(files: readonly NewFile[]): string[] {
    const clash = this.existing(files.map((f) => f.name));
    if (clash.length > 0) {
      throw new LitebootError('FILE_EXISTS', `refusing to overwrite ${clash.map((n) => this.path(n)).join(', ')}; remove ${clash.length > 1 ? 'them' : 'it'} first if you really mean to replace ${clash.length > 1 ? 'them' : 'it'}`);
    }
    // 0700 whatever the umask: whoever can write here can replace CA.crt, the trust anchor.
    if (makeDirectory(this.dir, 0o700)) chmodSync(this.dir, 0o700);
    const written: string[] = [];
    try {
      for (const f of files) {
        const p = this.path(f.name);
        const fd = openSync(p, 'wx', f.mode); // O_EXCL: never clobber a file that appeared meanwhile
        written.push(p);
        try {
          fchmodSync(fd, f.mode); // the umask applies to open's mode; keys are 0600 whatever it is
          const data = typeof f.data === 'string' ? Buffer.from(f.data) : f.data;
          writeSync(fd, data);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
    } catch (e) {
      for (const p of written) {
        try {
          unlinkSync(p);
        } catch {
          /* best effort: report the original failure */
        }
      }
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new LitebootError('FILE_EXISTS', `refusing to overwrite ${(e as NodeJS.ErrnoException).path}`, { cause: e });
      }
      throw new LitebootError('FILE_UNREADABLE', `cannot write to ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return written;
  }

  /**
   * The bootstrap and operator credentials in this directory (`BOOTSTRAP*.crt`, `OPERATOR-*.crt`)
   * that the CA signed, the original's Go-made BOOTSTRAP.crt included. Unreadable or foreign files
   * are skipped: they could not pass TLS either.
   */
  credentials(ca: CaMaterial): CredentialFile[] {
    const found: CredentialFile[] = [];
    for (const { path, cert } of this.credentialCertificates()) {
      if (!certificateSignedBy(cert.der, ca.cert.cert.publicKey)) continue;
      const ous = cert.subject.filter((a) => a.type === OID.organizationalUnitName).map((a) => a.value);
      const kind = ous.includes(OPERATOR_OU) ? 'operator' : ous.includes(BOOTSTRAP_OU) ? 'bootstrap' : undefined;
      if (!kind) continue;
      const name = cert.subject.find((a) => a.type === OID.commonName)?.value ?? basename(path);
      found.push({ file: basename(path), kind, name, serial: cert.serial, der: cert.der });
    }
    return found;
  }
}

/**
 * mkdir -p, one level at a time. Not `mkdirSync(dir, { recursive: true })`: Node 20's loops for
 * ever at 100% CPU (and deaf to SIGINT) when mkdir fails with ENOENT under a parent that exists,
 * as anywhere in /proc does. Returns whether it created `dir`; a failure is one line, no errno.
 */
export function makeDirectory(dir: string, mode: number): boolean {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    let st;
    try {
      st = statSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(d) !== d) {
        missing.unshift(d);
        continue;
      }
      throw new LitebootError('FILE_UNREADABLE', `cannot create ${dir}: ${why(e)} ${d}`, { cause: e });
    }
    if (!st.isDirectory()) throw new LitebootError('FILE_UNREADABLE', `cannot create ${dir}: ${d} is not a directory`);
    break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw new LitebootError('FILE_UNREADABLE', `cannot create ${dir}: ${why(e)} ${d}`, { cause: e });
    }
  }
  return missing.length > 0;
}

/** An errno as words a user can act on. */
function why(e: unknown): string {
  switch ((e as NodeJS.ErrnoException).code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied to create';
    case 'EROFS':
      return 'read-only file system at';
    case 'ENOSPC':
      return 'no space left for';
    case 'ENOENT':
      return 'the file system refuses to create';
    case 'EEXIST':
    case 'ENOTDIR':
      return 'a file that is not a directory is in the way of';
    default:
      return 'the system refuses to create';
  }
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

function who(mode: number, group: number, other: number): string {
  return [mode & group ? 'group' : '', mode & other ? 'others' : ''].filter(Boolean).join(' and ');
}
