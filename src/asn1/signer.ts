import { sign, verify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { LitebootError } from '../errors.js';
import { NULL, oid, sequence } from './der.js';
import { ecCurveOfSpki, publicKeyOf } from './keys.js';
import { OID } from './oids.js';
import { runJob, type VerifyAnswer, type VerifyJob } from './verify-worker.js';

/** An AlgorithmIdentifier as liteboot writes it: `parameters` null means an explicit NULL. */
export interface SignatureAlgorithm {
  oid: string;
  /** RFC 4055 §5 puts NULL parameters on RSA PKCS#1 v1.5; RFC 5758 §3.2 omits them on ECDSA. */
  nullParameters: boolean;
}

const algCache = new Map<string, Buffer>();

/** DER AlgorithmIdentifier for a signature algorithm (cached: one per CA). */
export function algorithmDer(alg: SignatureAlgorithm): Buffer {
  const key = `${alg.oid}/${alg.nullParameters}`;
  let enc = algCache.get(key);
  if (!enc) {
    enc = alg.nullParameters ? sequence(oid(alg.oid), NULL) : sequence(oid(alg.oid));
    algCache.set(key, enc);
  }
  return enc;
}

/**
 * Signs to-be-signed bytes. Builders take a Signer rather than a key so that an HSM or a remote
 * signer can stand in without touching them.
 */
export interface Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  sign(data: Uint8Array): Promise<Buffer>;
}

interface AlgSpec {
  hash: string | null;
  alg: SignatureAlgorithm;
}

function specForKey(key: KeyObject): AlgSpec {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      // RFC 5480 §4: the hash matches the curve's strength.
      if (curve === 'prime256v1') return { hash: 'sha256', alg: { oid: OID.ecdsaWithSHA256, nullParameters: false } };
      if (curve === 'secp384r1') return { hash: 'sha384', alg: { oid: OID.ecdsaWithSHA384, nullParameters: false } };
      if (curve === 'secp521r1') return { hash: 'sha512', alg: { oid: OID.ecdsaWithSHA512, nullParameters: false } };
      throw new LitebootError('UNSUPPORTED_KEY', `EC curve ${curve ?? 'unknown'} is not supported for signing`);
    }
    case 'ed25519':
      return { hash: null, alg: { oid: OID.ed25519, nullParameters: false } };
    case 'rsa':
      return { hash: 'sha256', alg: { oid: OID.sha256WithRSAEncryption, nullParameters: true } };
    default:
      throw new LitebootError('UNSUPPORTED_KEY', `a ${key.asymmetricKeyType} key cannot sign certificates`);
  }
}

export function keySigner(privateKey: KeyObject): Signer {
  if (privateKey.type !== 'private') throw new LitebootError('BAD_KEY', 'a signer needs a private key');
  const spec = specForKey(privateKey);
  const cheap = privateKey.asymmetricKeyType === 'ed25519' || privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  return {
    algorithm: spec.alg,
    publicKey: publicKeyOf(privateKey),
    // P-256 and Ed25519 on the event loop (~35 µs); RSA, P-384 and P-521 (0.7-1.5 ms) on the
    // libuv thread pool. Handing a 35 µs signature to the pool costs more than it saves: the
    // wake-up and the answer are four context switches, and on two cores busy with TLS they cost
    // the loop (bench, keep-alive, 8 clients: 1,630 -> 1,990 certificates/s, 0.87 -> 0.71 ms CPU).
    sign: cheap
      ? async (data) => sign(spec.hash, data, privateKey)
      : (data) => new Promise((resolve, reject) => sign(spec.hash, data, privateKey, (err, sig) => (err ? reject(err) : resolve(sig)))),
  };
}

const HASH_OF_SIGNATURE: Record<string, string | null> = {
  [OID.ecdsaWithSHA256]: 'sha256',
  [OID.ecdsaWithSHA384]: 'sha384',
  [OID.ecdsaWithSHA512]: 'sha512',
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
  [OID.ed25519]: null,
};

export const SIGNATURE_NAMES: Readonly<Record<string, string>> = {
  [OID.ecdsaWithSHA256]: 'ecdsa-with-SHA256',
  [OID.ecdsaWithSHA384]: 'ecdsa-with-SHA384',
  [OID.ecdsaWithSHA512]: 'ecdsa-with-SHA512',
  [OID.sha256WithRSAEncryption]: 'sha256WithRSAEncryption',
  [OID.sha384WithRSAEncryption]: 'sha384WithRSAEncryption',
  [OID.sha512WithRSAEncryption]: 'sha512WithRSAEncryption',
  [OID.ed25519]: 'ED25519',
};

/** Does `signature` over `data` verify under `publicKey` with the named signature algorithm? */
export async function verifySignature(algorithmOid: string, publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (!(algorithmOid in HASH_OF_SIGNATURE)) {
    throw new LitebootError('UNSUPPORTED_KEY', `signature algorithm ${algorithmOid} is not supported`);
  }
  const keyType = publicKey.asymmetricKeyType;
  const isEc = algorithmOid.startsWith('1.2.840.10045.4.');
  const isRsa = algorithmOid.startsWith('1.2.840.113549.1.1.');
  // The algorithm must fit the key: an ECDSA signature claimed over an RSA key is simply wrong.
  if ((isEc && keyType !== 'ec') || (isRsa && keyType !== 'rsa') || (algorithmOid === OID.ed25519 && keyType !== 'ed25519')) {
    return false;
  }
  // The callback form runs on the libuv thread pool, off the event loop.
  return new Promise((resolve) => {
    try {
      verify(HASH_OF_SIGNATURE[algorithmOid] ?? null, data, publicKey, signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false);
    }
  });
}

/**
 * Where a CSR's key import and self-signature check run: on the event loop by default (the CLI
 * checks one CSR at a time); once the API server has called verifyOffLoop(), P-256/P-384 ECDSA
 * CSRs are checked on one worker thread (verify-worker.ts). On the loop they cost ~130 µs a
 * request even with the verify itself on the thread pool: OpenSSL's key import (~90 µs) has no
 * asynchronous form, and a fresh key's first verify still costs the loop ~35 µs. Handing the
 * bytes to the worker and taking the answer back costs the loop ~25 µs, and the worker runs on
 * the second core. If the worker dies, its checks (and later ones) come back to the loop.
 */
class OffLoopVerifier {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly pending = new Map<number, { job: VerifyJob; resolve: (a: VerifyAnswer) => void }>();

  constructor() {
    const w = new Worker(new URL('./verify-worker.js', import.meta.url));
    w.on('message', (a: VerifyAnswer) => {
      const p = this.pending.get(a.id);
      this.pending.delete(a.id);
      p?.resolve(a);
    });
    const gone = () => {
      this.worker = undefined;
      for (const p of this.pending.values()) p.resolve(runJob(p.job));
      this.pending.clear();
    };
    w.on('error', gone);
    w.on('exit', gone);
    w.unref(); // never what keeps a process alive (after the listeners: adding one refs it again)
    this.worker = w;
  }

  run(hash: string, spki: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<VerifyAnswer> {
    // One compact copy: a view into a larger buffer (the request body) would be cloned whole.
    const bytes = new Uint8Array(spki.length + data.length + signature.length);
    bytes.set(spki, 0);
    bytes.set(data, spki.length);
    bytes.set(signature, spki.length + data.length);
    const job: VerifyJob = { id: ++this.nextId, hash, bytes, spkiLength: spki.length, dataLength: data.length };
    const w = this.worker;
    if (!w) return Promise.resolve(runJob(job));
    return new Promise((resolve) => {
      this.pending.set(job.id, { job, resolve });
      w.postMessage(job);
    });
  }
}

let offLoop: OffLoopVerifier | undefined;

/** From now on, check P-256/P-384 ECDSA CSRs on a worker thread (see OffLoopVerifier). */
export function verifyOffLoop(): void {
  offLoop ??= new OffLoopVerifier();
}

const ECDSA = new Set<string>([OID.ecdsaWithSHA256, OID.ecdsaWithSHA384, OID.ecdsaWithSHA512]);

/**
 * The self-signature check of a P-256/P-384 key given as SPKI bytes, off the loop (`keyParses`
 * false if the key does not import); undefined when not off-loaded (verifyOffLoop() not called,
 * another key type or algorithm): the caller imports the key and calls verifySignature.
 */
export function verifySpkiOffLoop(algorithmOid: string, spki: Uint8Array, data: Uint8Array, signature: Uint8Array): Promise<VerifyAnswer> | undefined {
  if (!offLoop || !ECDSA.has(algorithmOid) || !ecCurveOfSpki(spki)) return undefined;
  return offLoop.run(HASH_OF_SIGNATURE[algorithmOid]!, spki, data, signature);
}
