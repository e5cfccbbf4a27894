import { verify } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { publicKeyFromSpki } from './keys.js';

/**
 * The worker thread behind {@link verifyOffLoop} (signer.ts): imports a CSR's public key and
 * checks its self-signature, so that neither costs the event loop. A message is
 * `{ id, hash, bytes, spkiLength, dataLength }` with `bytes` = SPKI | signed data | signature;
 * the answer is `{ id, keyParses, valid }`.
 */
export interface VerifyJob {
  id: number;
  hash: string;
  bytes: Uint8Array;
  spkiLength: number;
  dataLength: number;
}

export interface VerifyAnswer {
  id: number;
  keyParses: boolean;
  valid: boolean;
}

export function runJob(j: VerifyJob): VerifyAnswer {
  const b = Buffer.from(j.bytes.buffer, j.bytes.byteOffset, j.bytes.byteLength);
  let key;
  try {
    key = publicKeyFromSpki(b.subarray(0, j.spkiLength));
  } catch {
    return { id: j.id, keyParses: false, valid: false };
  }
  let valid = false;
  try {
    valid = verify(j.hash, b.subarray(j.spkiLength, j.spkiLength + j.dataLength), key, b.subarray(j.spkiLength + j.dataLength));
  } catch {
    valid = false;
  }
  return { id: j.id, keyParses: true, valid };
}

parentPort?.on('message', (j: VerifyJob) => parentPort!.postMessage(runJob(j)));
