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

export interface ProvisionResult {
  devices: Provisioned[];
  failures: { uuid: string; error: string }[];
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

/** Enrols `count` new devices over the client's keep-alive connections. */
export async function provision(o: ProvisionOptions): Promise<ProvisionResult> {
  const started = Date.now();
  const sleep = o.sleep ?? defaultSleep;
  const now = o.now ?? (() => new Date());
  const attempts = o.attempts ?? 5;
  const result: ProvisionResult = { devices: [], failures: [], elapsedMs: 0 };
  let next = 0;
  const one = async (): Promise<void> => {
    const uuid = randomUUID();
    const key = generateKey('P-256');
    const csr = await buildCsr(dn({ O: o.org, CN: uuid, OU: o.ou || undefined }), key);
    for (let attempt = 1; ; attempt++) {
      try {
        const der = await o.client.enrol(csr, o.format);
        const cert = verifyIssued(der, key, o.ca, uuid, now());
        const [keyFile, certFile] = o.certs.writeNew([
          { name: `${uuid}.key`, data: privateKeyToPem(key), mode: 0o600 },
          { name: `${uuid}.crt`, data: toPem('CERTIFICATE', der), mode: 0o644 },
        ]);
        result.devices.push({ uuid, serial: BigInt('0x' + cert.serialNumber), certFile: certFile!, keyFile: keyFile! });
        return;
      } catch (e) {
        if (isTransient(e) && attempt < attempts) {
          await sleep(Math.min(3000, 200 * 2 ** (attempt - 1)));
          continue;
        }
        result.failures.push({ uuid, error: e instanceof Error ? e.message : String(e) });
        return;
      }
    }
  };
  const worker = async () => {
    while (next < o.count) {
      next++;
      await one();
      o.onProgress?.(result.devices.length, result.failures.length, o.count);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, o.count)) }, worker));
  result.elapsedMs = Date.now() - started;
  return result;
}
