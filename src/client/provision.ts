import { randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { buildCsr } from '../asn1/csr.js';
import { generateKey, privateKeyToPem } from '../asn1/keys.js';
import { dn } from '../asn1/name.js';
import { toPem } from '../asn1/pem.js';
import type { CertsDir } from '../ca/certs-dir.js';
import { LitebootError } from '../errors.js';
import { isTransient, type ApiClient, type EnrolFormat } from './api-client.js';

export interface Provisioned {
  uuid: string;
  serial: bigint;
  certFile: string;
  keyFile: string;
}

/** A device the server issued a certificate for that could not be saved (or did not check out). */
export interface Unsaved {
  uuid: string;
  serial?: bigint;
  /** Its key, written before the request was sent: with `cert get SERIAL` the device can still be put together. */
  keyFile?: string;
  error: string;
}

export interface ProvisionResult {
  devices: Provisioned[];
  /** Devices that got no certificate (the key is kept when the request may have reached the server). */
  failures: { uuid: string; error: string; keyFile?: string }[];
  unsaved: Unsaved[];
  /** The signal stopped new requests before `count` were started. */
  interrupted: boolean;
  elapsedMs: number;
}

export interface ProvisionOptions {
  client: ApiClient;
  /** The CA the returned certificates must chain to. */
  ca: X509Certificate;
  certs: CertsDir;
  org: string;
  ou: string;
  format: EnrolFormat;
  count: number;
  concurrency: number;
  /** Attempts per device for transient failures (connection refused or reset, 5xx). */
  attempts?: number;
  onProgress?: (done: number, failed: number, total: number) => void;
  /** Stops starting new devices (and retrying); the requests in flight finish and are saved. */
  signal?: AbortSignal;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => Date;
}

/**
 * Checks what the server returned before anything is written: signed by our CA, for our key,
 * with our UUID as CN, valid now (new-device.sh trusted whatever came back).
 */
export function verifyIssued(der: Buffer, key: KeyObject, ca: X509Certificate, uuid: string, now: Date): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw new LitebootError('BAD_CERT_RETURNED', 'the server returned something that is not a certificate');
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new LitebootError('BAD_CERT_RETURNED', 'the returned certificate is not signed by the CA in certs/CA.crt');
  if (!cert.checkPrivateKey(key)) throw new LitebootError('BAD_CERT_RETURNED', 'the returned certificate is not for the key that was sent');
  if (!cert.subject.split('\n').includes(`CN=${uuid}`)) throw new LitebootError('BAD_CERT_RETURNED', `the returned certificate is not for CN=${uuid} (${cert.subject.replace(/\n/g, ', ')})`);
  if (new Date(cert.validFrom).getTime() > now.getTime() + 300_000 || new Date(cert.validTo).getTime() < now.getTime()) {
    throw new LitebootError('BAD_CERT_RETURNED', `the returned certificate is not valid now (${cert.validFrom} to ${cert.validTo})`);
  }
  return cert;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Enrols `count` new devices over the client's keep-alive connections. Each device's key is on
 * disk before its CSR is sent and its certificate as soon as it arrives, so that an interrupted
 * batch leaves every device the server issued either saved or named in `unsaved`.
 */
export async function provision(o: ProvisionOptions): Promise<ProvisionResult> {
  const started = Date.now();
  const sleep = o.sleep ?? defaultSleep;
  const now = o.now ?? (() => new Date());
  const attempts = o.attempts ?? 5;
  const result: ProvisionResult = { devices: [], failures: [], unsaved: [], interrupted: false, elapsedMs: 0 };
  const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
  let next = 0;
  const one = async (): Promise<void> => {
    const uuid = randomUUID();
    const key = generateKey('P-256');
    const csr = await buildCsr(dn({ O: o.org, CN: uuid, OU: o.ou || undefined }), key);
    let keyFile: string;
    try {
      [keyFile] = o.certs.writeNew([{ name: `${uuid}.key`, data: privateKeyToPem(key), mode: 0o600 }]) as [string];
    } catch (e) {
      result.failures.push({ uuid, error: message(e) });
      return;
    }
    let der: Buffer;
    for (let attempt = 1; ; attempt++) {
      try {
        der = await o.client.enrol(csr, o.format);
        break;
      } catch (e) {
        const transient = isTransient(e);
        if (transient && attempt < attempts && !o.signal?.aborted) {
          await sleep(Math.min(3000, 200 * 2 ** (attempt - 1)));
          if (!o.signal?.aborted) continue;
        }
        // A refusal issued nothing: the key goes. A lost connection may have been answered: it stays.
        if (transient) result.failures.push({ uuid, error: message(e), keyFile });
        else {
          o.certs.remove(`${uuid}.key`);
          result.failures.push({ uuid, error: message(e) });
        }
        return;
      }
    }
    let serial: bigint | undefined;
    try {
      serial = BigInt('0x' + new X509Certificate(der).serialNumber);
    } catch {
      /* verifyIssued says what it is */
    }
    try {
      verifyIssued(der, key, o.ca, uuid, now());
      const [certFile] = o.certs.writeNew([{ name: `${uuid}.crt`, data: toPem('CERTIFICATE', der), mode: 0o644 }]);
      result.devices.push({ uuid, serial: serial!, certFile: certFile!, keyFile });
    } catch (e) {
      result.unsaved.push({ uuid, serial, keyFile, error: message(e) });
    }
  };
  const worker = async () => {
    while (next < o.count) {
      if (o.signal?.aborted) {
        result.interrupted = true;
        return;
      }
      next++;
      await one();
      o.onProgress?.(result.devices.length, result.failures.length + result.unsaved.length, o.count);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, o.count)) }, worker));
  if (o.signal?.aborted) result.interrupted = true;
  result.elapsedMs = Date.now() - started;
  return result;
}
