import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseCertificate } from '../asn1/certificate.js';
import { keyIdentifier } from '../asn1/extensions.js';
import { encryptedPrivateKeyToPem, generateKey, keysMatch, privateKeyToPem, privateKeyToSec1Der, spkiDer, type KeyAlgorithm } from '../asn1/keys.js';
import { dn } from '../asn1/name.js';
import { toPem } from '../asn1/pem.js';
import { keySigner } from '../asn1/signer.js';
import { LitebootError } from '../errors.js';
import { bytesAsXxdInclude, pemAsCStrings } from './c-source.js';
import { CertsDir, FILES, type NewFile } from './certs-dir.js';
import {
  BOOTSTRAP_CN,
  bootstrapCertificate,
  caCertificate,
  DEFAULT_ORG,
  defaultCaCommonName,
  ocspResponderCertificate,
  operatorCertificate,
  serverCertificate,
  type Issuer,
} from './profiles.js';
import { randomSerial } from './serial.js';

const KEY_MODE = 0o600;
const PUBLIC_MODE = 0o644;

export interface SetupCaOptions {
  certs: CertsDir;
  dbPath: string;
  hostname: string;
  sans?: readonly string[];
  org?: string;
  cn?: string;
  days?: number;
  serverDays?: number;
  keyAlgorithm?: KeyAlgorithm;
  /** Writes CA.key encrypted with this password (PKCS#8, PBES2/AES-256-CBC) instead of plain SEC1. */
  encryptPassphrase?: string;
  now: Date;
}

/** What `setupCa` made. */
export interface MadeCa {
  written: string[];
  caSerial: bigint;
  serverSerial: bigint;
}

/** Creates the CA and the TLS server credential. */
export async function setupCa(o: SetupCaOptions): Promise<MadeCa> {
  const names = [FILES.caCert, FILES.caKey, FILES.serverCert, FILES.serverKey, FILES.caCString];
  const clash = o.certs.existing(names).map((n) => o.certs.path(n));
  if (o.dbPath !== '' && existsSync(o.dbPath)) clash.push(o.dbPath);
  if (clash.length > 0) {
    throw new LitebootError(
      'FILE_EXISTS',
      `refusing to overwrite ${clash.join(', ')}: a CA already exists here. To reissue only the server certificate, run \`liteboot setup-server HOSTNAME\`; to start over, remove ${clash.length > 1 ? 'them' : 'it'} (rm ${clash.join(' ')}); every certificate it issued will then stop verifying`,
    );
  }
  for (const name of [o.hostname, ...(o.sans ?? [])]) checkHostname(name);
  const caKey = generateKey(o.keyAlgorithm);
  const caSigner = keySigner(caKey);
  const caPub = spkiDer(caKey);
  const caSerial = randomSerial();
  const caDer = await caCertificate({
    subject: dn({ O: o.org ?? DEFAULT_ORG, CN: o.cn ?? defaultCaCommonName(o.now) }),
    serial: caSerial,
    publicKey: caPub,
    notBefore: o.now,
    days: o.days ?? 3650,
    signer: caSigner,
  });
  const caPem = toPem('CERTIFICATE', caDer);
  const ca = parseCertificate(caDer);
  const issuer = { subjectDer: ca.subjectDer, notAfter: ca.notAfter, keyId: keyIdentifier(caPub), spki: ca.spki, signer: caSigner };
  const server = await serverCredential(issuer, { ...o, days: o.serverDays ?? o.days });
  const written = o.certs.writeNew([
    { name: FILES.caKey, data: o.encryptPassphrase === undefined ? privateKeyToPem(caKey) : encryptedPrivateKeyToPem(caKey, o.encryptPassphrase), mode: KEY_MODE },
    { name: FILES.caCert, data: caPem, mode: PUBLIC_MODE },
    { name: FILES.caCString, data: pemAsCStrings(caPem), mode: PUBLIC_MODE },
    ...server.files,
  ]);
  return { written, caSerial, serverSerial: server.serial };
}

/** A TLS server key and certificate for `hostname` (and `sans`), as files to write. */
async function serverCredential(
  issuer: Issuer,
  o: { hostname: string; sans?: readonly string[]; org?: string; days?: number; keyAlgorithm?: KeyAlgorithm; now: Date },
): Promise<{ files: NewFile[]; serial: bigint }> {
  for (const name of [o.hostname, ...(o.sans ?? [])]) checkHostname(name);
  const serverKey = generateKey(o.keyAlgorithm);
  const serial = randomSerial();
  const serverDer = await serverCertificate(issuer, {
    hostname: o.hostname,
    sans: o.sans,
    org: o.org,
    serial,
    publicKey: spkiDer(serverKey),
    notBefore: o.now,
    days: o.days ?? 3650,
  });
  return {
    serial,
    files: [
      { name: FILES.serverKey, data: privateKeyToPem(serverKey), mode: KEY_MODE },
      { name: FILES.serverCert, data: toPem('CERTIFICATE', serverDer), mode: PUBLIC_MODE },
    ],
  };
}

export interface SetupServerOptions {
  certs: CertsDir;
  hostname: string;
  sans?: readonly string[];
  org?: string;
  /** Validity in days (default 3650, never beyond the CA). */
  days?: number;
  keyAlgorithm?: KeyAlgorithm;
  /** The password of an encrypted CA.key. */
  caPassphrase?: string;
  now: Date;
}

/** What a reissue or renewal wrote, and where the files it replaced went. */
export interface Reissued {
  written: string[];
  /** [old path, backup path] for every file moved aside. */
  backups: [string, string][];
  serial: bigint;
}

/**
 * Reissues the TLS server credential (a new key and certificate) from the existing CA, for a new
 * host name or after SERVER.* were lost. Existing SERVER.crt/SERVER.key are kept as backups.
 */
export async function setupServer(o: SetupServerOptions): Promise<Reissued> {
  const ca = o.certs.loadCa(o.caPassphrase);
  const server = await serverCredential(ca.issuer, o);
  return replaceFiles(o.certs, server.files, o.now, server.serial);
}

/**
 * Moves the files about to be replaced aside (`NAME.<UTC time>.bak`), writes the new ones, and puts
 * the old ones back if writing fails: the directory never ends up with neither.
 */
function replaceFiles(certs: CertsDir, files: NewFile[], now: Date, serial: bigint): Reissued {
  const backups = certs.moveAside(files.map((f) => f.name), now);
  try {
    return { written: certs.writeNew(files), backups, serial };
  } catch (e) {
    certs.moveBack(backups);
    throw e;
  }
}

// RFC 1123 §2.1 host names (letters, digits, hyphens, dot-separated labels) or an IP literal.
const HOSTNAME = /^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

function checkHostname(name: string): void {
  if (!isIP(name) && !HOSTNAME.test(name)) {
    throw new LitebootError('USAGE', `"${name}" is not a valid host name or IP address for the server certificate`);
  }
}

export interface SetupBootstrapOptions {
  certs: CertsDir;
  /** Another credential beside the first: `BOOTSTRAP-<name>.*`, CN `bootstrap-<name>`. */
  name?: string;
  days?: number;
  keyAlgorithm?: KeyAlgorithm;
  /** The password of an encrypted CA.key. */
  caPassphrase?: string;
  now: Date;
}

/** The files of a bootstrap credential: `BOOTSTRAP.*` for the first, `BOOTSTRAP-<name>.*` for a rotation. */
export function bootstrapFiles(name?: string): { cert: string; key: string; cString: string; keyC: string } {
  if (name === undefined) return { cert: FILES.bootstrapCert, key: FILES.bootstrapKey, cString: FILES.bootstrapCString, keyC: FILES.bootstrapKeyC };
  return { cert: `BOOTSTRAP-${name}.crt`, key: `BOOTSTRAP-${name}.key`, cString: `bootstrap-${name}_crt.txt`, keyC: `bootstrap-${name}_key.txt` };
}

export interface MadeCredential {
  written: string[];
  kind: 'bootstrap' | 'operator';
  /** The certificate's CN. */
  cn: string;
  serial: bigint;
  der: Buffer;
}

const CREDENTIAL_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Creates a shared bootstrap credential and its C-source copies. With `name`, another one beside
 * the first (a new production batch gets a new key; the old one stays valid until revoked).
 */
export async function setupBootstrap(o: SetupBootstrapOptions): Promise<MadeCredential> {
  if (o.name !== undefined && !CREDENTIAL_NAME.test(o.name)) {
    throw new LitebootError('USAGE', `bootstrap credential name "${o.name}" must be 1-64 letters, digits, dots, dashes or underscores`);
  }
  const f = bootstrapFiles(o.name);
  const names = [f.cert, f.key, f.cString, f.keyC];
  const clash = o.certs.existing(names);
  if (clash.length > 0) {
    throw new LitebootError(
      'FILE_EXISTS',
      `refusing to overwrite ${clash.map((n) => o.certs.path(n)).join(', ')}; make another credential with --name NAME (devices built with the old one keep working until it is revoked)`,
    );
  }
  const ca = o.certs.loadCa(o.caPassphrase);
  const key = generateKey(o.keyAlgorithm);
  const cn = o.name === undefined ? BOOTSTRAP_CN : `bootstrap-${o.name}`;
  const serial = randomSerial();
  const der = await bootstrapCertificate(ca.issuer, { cn, serial, publicKey: spkiDer(key), notBefore: o.now, days: o.days ?? 3650 });
  const pem = toPem('CERTIFICATE', der);
  const written = o.certs.writeNew([
    { name: f.key, data: privateKeyToPem(key), mode: KEY_MODE },
    { name: f.cert, data: pem, mode: PUBLIC_MODE },
    { name: f.cString, data: pemAsCStrings(pem), mode: PUBLIC_MODE },
    { name: f.keyC, data: bytesAsXxdInclude(privateKeyToSec1Der(key)), mode: KEY_MODE },
  ]);
  return { written, kind: 'bootstrap', cn, serial, der };
}

export interface RenewOptions {
  certs: CertsDir;
  /** The operator's name; for a bootstrap credential, the --name of a rotation (undefined: BOOTSTRAP.*). */
  name?: string;
  days?: number;
  /** The password of an encrypted CA.key. */
  caPassphrase?: string;
  now: Date;
}

/** A renewed credential: the new certificate, the backups of what it replaced, and the old serial. */
export interface RenewedCredential extends MadeCredential {
  backups: [string, string][];
  /** The serial of the certificate replaced, which stays valid until an operator revokes it. */
  oldSerial: bigint;
}

function loadOld(certs: CertsDir, file: string, what: string, hint: string) {
  return certs.loadCertificate(file, what, hint).cert;
}

/**
 * A new certificate for a bootstrap credential, for the SAME key: the key is in the flash of
 * every device built with it, so a renewal only extends the certificate (devices get the new
 * `bootstrap_crt.txt`); a new key is a new credential (`setup-bootstrap --name`). Same subject.
 */
export async function renewBootstrap(o: RenewOptions): Promise<RenewedCredential> {
  if (o.name !== undefined && !CREDENTIAL_NAME.test(o.name)) {
    throw new LitebootError('USAGE', `bootstrap credential name "${o.name}" must be 1-64 letters, digits, dots, dashes or underscores`);
  }
  const f = bootstrapFiles(o.name);
  const hint = `make it with \`liteboot setup-bootstrap${o.name === undefined ? '' : ` --name ${o.name}`}\``;
  const old = loadOld(o.certs, f.cert, `the bootstrap credential ${f.cert}`, hint);
  const key = o.certs.loadPrivateKey(f.key, `the key of ${f.cert}`, hint);
  if (!keysMatch(key, old.publicKey)) throw new LitebootError('KEY_MISMATCH', `${o.certs.path(f.key)} is not the key of ${o.certs.path(f.cert)}`);
  const ca = o.certs.loadCa(o.caPassphrase);
  const cn = o.name === undefined ? BOOTSTRAP_CN : `bootstrap-${o.name}`;
  const serial = randomSerial();
  const der = await bootstrapCertificate(ca.issuer, { cn, serial, publicKey: spkiDer(key), notBefore: o.now, days: o.days ?? 3650 });
  const pem = toPem('CERTIFICATE', der);
  const r = replaceFiles(
    o.certs,
    [
      { name: f.cert, data: pem, mode: PUBLIC_MODE },
      { name: f.cString, data: pemAsCStrings(pem), mode: PUBLIC_MODE },
    ],
    o.now,
    serial,
  );
  return { ...r, kind: 'bootstrap', cn, der, oldSerial: old.serial };
}

/** A new key and certificate for an operator (the key is a secret: a renewal rotates it). */
export async function renewOperator(o: RenewOptions & { name: string }): Promise<RenewedCredential> {
  if (!CREDENTIAL_NAME.test(o.name)) throw new LitebootError('USAGE', `operator name "${o.name}" must be 1-64 letters, digits, dots, dashes or underscores`);
  const file = `OPERATOR-${o.name}.crt`;
  const old = loadOld(o.certs, file, `the operator credential ${file}`, `make it with \`liteboot operator create ${o.name}\``);
  const ca = o.certs.loadCa(o.caPassphrase);
  const key = generateKey('P-256');
  const serial = randomSerial();
  const der = await operatorCertificate(ca.issuer, { cn: o.name, serial, publicKey: spkiDer(key), notBefore: o.now, days: o.days ?? 365 });
  const r = replaceFiles(
    o.certs,
    [
      { name: `OPERATOR-${o.name}.key`, data: privateKeyToPem(key), mode: KEY_MODE },
      { name: file, data: toPem('CERTIFICATE', der), mode: PUBLIC_MODE },
    ],
    o.now,
    serial,
  );
  return { ...r, kind: 'operator', cn: o.name, der, oldSerial: old.serial };
}

export interface MakeOperatorOptions {
  certs: CertsDir;
  name: string;
  days?: number;
  /** The password of an encrypted CA.key. */
  caPassphrase?: string;
  now: Date;
}

/** An operator credential `OPERATOR-<name>.crt/.key` (OU `LinaroCA Operator Cert`). */
export async function makeOperator(o: MakeOperatorOptions): Promise<MadeCredential> {
  if (!CREDENTIAL_NAME.test(o.name)) {
    throw new LitebootError('USAGE', `operator name "${o.name}" must be 1-64 letters, digits, dots, dashes or underscores`);
  }
  const ca = o.certs.loadCa(o.caPassphrase);
  const key = generateKey('P-256');
  const serial = randomSerial();
  const der = await operatorCertificate(ca.issuer, { cn: o.name, serial, publicKey: spkiDer(key), notBefore: o.now, days: o.days ?? 365 });
  const written = o.certs.writeNew([
    { name: `OPERATOR-${o.name}.key`, data: privateKeyToPem(key), mode: KEY_MODE },
    { name: `OPERATOR-${o.name}.crt`, data: toPem('CERTIFICATE', der), mode: PUBLIC_MODE },
  ]);
  return { written, kind: 'operator', cn: o.name, serial, der };
}


export interface MakeOcspResponderOptions {
  certs: CertsDir;
  /** Validity in days (default 30: a responder with ocsp-nocheck should not live long). */
  days?: number;
  /** The password of an encrypted CA.key. */
  caPassphrase?: string;
  now: Date;
}

/** The delegated OCSP responder credential `OCSP.crt`/`OCSP.key`, for `[server] ocsp_signer = "delegated"`. */
export async function makeOcspResponder(o: MakeOcspResponderOptions): Promise<{ written: string[]; serial: bigint }> {
  const clash = o.certs.existing([FILES.ocspCert, FILES.ocspKey]);
  if (clash.length > 0) {
    throw new LitebootError('FILE_EXISTS', `refusing to overwrite ${clash.map((n) => o.certs.path(n)).join(', ')}; remove ${clash.length > 1 ? 'them' : 'it'} to make a new responder certificate (then restart the server)`);
  }
  const ca = o.certs.loadCa(o.caPassphrase);
  const key = generateKey('P-256');
  const serial = randomSerial();
  const der = await ocspResponderCertificate(ca.issuer, { serial, publicKey: spkiDer(key), notBefore: o.now, days: o.days ?? 30 });
  const written = o.certs.writeNew([
    { name: FILES.ocspKey, data: privateKeyToPem(key), mode: KEY_MODE },
    { name: FILES.ocspCert, data: toPem('CERTIFICATE', der), mode: PUBLIC_MODE },
  ]);
  return { written, serial };
}
