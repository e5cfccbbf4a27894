import type { KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, Extensions, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { LitebootError } from '../errors.js';
import { assertSingleSequence } from './der.js';
import { publicKeyFromSpki, spkiDer } from './keys.js';
import { fromAsnName, toAsnName, type DistinguishedName, type NameAttribute } from './name.js';
import { OID } from './oids.js';
import { keySigner, verifySignature } from './signer.js';

/** A PKCS#10 request (RFC 2986) as liteboot reads it. */
export interface ParsedCsr {
  der: Buffer;
  subject: NameAttribute[];
  spki: Buffer;
  publicKey: KeyObject;
  signatureAlgorithm: string;
  /** OIDs of the extensions requested through the extensionRequest attribute (never copied). */
  requestedExtensions: string[];
  /** RFC 2986 §3: the signature over certificationRequestInfo with the subject's own key. */
  signatureValid: boolean;
}

/** Parses a DER CSR. Structure errors throw BAD_CSR; the signature is checked, not thrown on. */
export function parseCsr(der: Uint8Array): ParsedCsr {
  assertSingleSequence(der, 'the CSR');
  let req: CertificationRequest;
  try {
    req = AsnConvert.parse(der, CertificationRequest);
  } catch (e) {
    throw new LitebootError('BAD_CSR', 'the CSR is not a valid PKCS#10 structure', { cause: e });
  }
  const info = req.certificationRequestInfo;
  if (info.version !== 0) throw new LitebootError('BAD_CSR', `the CSR has version ${info.version}; PKCS#10 v1 (0) is the only one`);
  const raw = req.certificationRequestInfoRaw;
  if (!raw) throw new LitebootError('BAD_CSR', 'the CSR could not be read');
  const spki = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  const publicKey = publicKeyFromSpki(spki);
  const requested: string[] = [];
  for (const attr of info.attributes ?? []) {
    if (attr.type !== OID.extensionRequest) continue;
    for (const v of attr.values) {
      try {
        for (const e of AsnConvert.parse(v, Extensions)) requested.push(e.extnID);
      } catch {
        throw new LitebootError('BAD_CSR', 'the CSR has a malformed extensionRequest attribute');
      }
    }
  }
  const algorithm = req.signatureAlgorithm.algorithm;
  return {
    der: Buffer.from(der),
    subject: fromAsnName(info.subject),
    spki,
    publicKey,
    signatureAlgorithm: algorithm,
    requestedExtensions: requested,
    signatureValid: verifySignature(algorithm, publicKey, new Uint8Array(raw), new Uint8Array(req.signature)),
  };
}

/** Builds a CSR signed by `privateKey`, with no attributes (the `[0]` set is present and empty). */
export function buildCsr(subject: DistinguishedName, privateKey: KeyObject): Buffer {
  const signer = keySigner(privateKey);
  const info = new CertificationRequestInfo({
    version: 0,
    subject: toAsnName(subject),
    subjectPKInfo: AsnConvert.parse(spkiDer(privateKey), SubjectPublicKeyInfo),
    attributes: new Attributes(),
  });
  const infoDer = new Uint8Array(AsnConvert.serialize(info));
  const sig = signer.sign(infoDer);
  const alg = signer.algorithm.nullParameters
    ? new AlgorithmIdentifier({ algorithm: signer.algorithm.oid, parameters: null })
    : new AlgorithmIdentifier({ algorithm: signer.algorithm.oid });
  const req = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: alg, signature: new Uint8Array(sig).buffer });
  return Buffer.from(AsnConvert.serialize(req));
}
