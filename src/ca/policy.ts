import { parseCsr, type ParsedCsr } from '../asn1/csr.js';
import { describeKey } from '../asn1/keys.js';
import { formatName, type NameAttribute } from '../asn1/name.js';
import { OID } from '../asn1/oids.js';
import { LitebootError } from '../errors.js';
import { BOOTSTRAP_OU, OPERATOR_OU } from './profiles.js';
import { canonicalUuid } from './uuid.js';

export interface IssuancePolicy {
  /** CN must be a UUID (default true; `[server] require_uuid = false` relaxes it). */
  requireUuid: boolean;
}

/** A CSR that passed policy: who the device is and what goes into its certificate. */
export interface AcceptedRequest {
  csr: ParsedCsr;
  /** The device id: the CN, canonical lower case when it is a UUID. */
  deviceId: string;
  /** The certificate subject: the CSR's, with the CN in canonical form. */
  subject: NameAttribute[];
  /** The original's `name` column: the OU, or '' when the CSR has none (API.md improvement 4). */
  ou: string;
}

const RESERVED_OUS = [BOOTSTRAP_OU, OPERATOR_OU].map((o) => o.toLowerCase());
const MAX_CN = 64; // RFC 5280 Appendix A ub-common-name

function refuse(code: 'BAD_CSR_SIGNATURE' | 'UNSUPPORTED_KEY' | 'BAD_SUBJECT', why: string): never {
  throw new LitebootError(code, `CSR refused: ${why}`);
}

/** RFC 5480 curves, Ed25519, and RSA of at least 2048 bits (NIST SP 800-131A). */
function checkKey(csr: ParsedCsr): void {
  const k = describeKey(csr.publicKey);
  if (k.type === 'EC' && (k.curve === 'P-256' || k.curve === 'P-384')) return;
  if (k.type === 'Ed25519') return;
  if (k.type === 'RSA' && k.bits >= 2048 && k.bits <= 8192) return;
  refuse('UNSUPPORTED_KEY', `a ${k.label} key is not accepted (use ECDSA P-256 or P-384, Ed25519, or RSA 2048-8192)`);
}

/**
 * Validates an enrolment request (API.md "stricter or better" 1-4): proof of possession, key
 * type, and a subject whose CN is the device id and whose OU claims no privileged role.
 */
export async function acceptCsr(der: Uint8Array, policy: IssuancePolicy): Promise<AcceptedRequest> {
  let csr: ParsedCsr;
  try {
    csr = await parseCsr(der);
  } catch (e) {
    const why = e instanceof LitebootError ? e.message : 'it does not parse';
    throw new LitebootError('BAD_CSR', `CSR refused: ${why}`, { cause: e });
  }
  if (!csr.signatureValid) refuse('BAD_CSR_SIGNATURE', 'its signature does not verify with its own key (proof of possession failed)');
  checkKey(csr);
  const cns = csr.subject.filter((a) => a.type === OID.commonName);
  if (cns.length !== 1) refuse('BAD_SUBJECT', `the subject must have exactly one CN (has ${cns.length}: ${formatName(csr.subject) || 'empty'})`);
  const cn = cns[0]!.value;
  const uuid = canonicalUuid(cn);
  if (policy.requireUuid && !uuid) refuse('BAD_SUBJECT', `the CN "${cn}" is not a UUID`);
  if (!uuid && (cn.length === 0 || cn.length > MAX_CN || /[\u0000-\u001f/\\]/.test(cn))) refuse('BAD_SUBJECT', `the CN "${cn}" is not a usable device id`);
  const ous = csr.subject.filter((a) => a.type === OID.organizationalUnitName).map((a) => a.value);
  for (const ou of ous) {
    if (RESERVED_OUS.includes(ou.trim().toLowerCase())) refuse('BAD_SUBJECT', `a device may not claim the OU "${ou}"`);
  }
  const deviceId = uuid ?? cn;
  return {
    csr,
    deviceId,
    subject: csr.subject.map((a) => (a.type === OID.commonName ? { type: a.type, value: deviceId } : a)),
    ou: ous[0] ?? '',
  };
}
