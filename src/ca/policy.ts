import { parseCsr, type ParsedCsr } from '../asn1/csr.js';
import { keyIdentifier } from '../asn1/extensions.js';
import { formatName, shortName, type DistinguishedName, type NameAttribute } from '../asn1/name.js';
import { OID } from '../asn1/oids.js';
import { LitebootError } from '../errors.js';
import { BOOTSTRAP_OU, OPERATOR_OU } from './profiles.js';
import { canonicalUuid } from './uuid.js';

export interface IssuancePolicy {
  /** CN must be a UUID (default true; `[server] require_uuid = false` relaxes it). */
  requireUuid: boolean;
  /**
   * Subjects no device may have, whatever `requireUuid` says: the CA's (a device certificate
   * with issuer = subject passes `openssl verify` as if self-issued), the server's, and every
   * bootstrap and operator credential's. Make them with {@link reservedSubject}.
   */
  reservedSubjects?: readonly ReservedSubject[];
}

/** A subject in canonical form (see {@link subjectKey}) and what it belongs to, for the message. */
export interface ReservedSubject {
  /** e.g. "the CA certificate's". */
  what: string;
  key: string;
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
  /** The key's identifier (RFC 5280 §4.2.1.2 (1)): the certificate's SKI and the store's keyid. */
  keyId: Buffer;
}

const MAX_CN = 64; // RFC 5280 Appendix A ub-common-name

/**
 * How long a subject value may be, in characters: RFC 5280 Appendix A's upper bounds for the
 * types device subjects use, OTHER_VALUE for any other type. Without them a bootstrap holder
 * could enrol 16 KB certificates again and again (the store keeps every one, in memory for
 * CADB.db), and no device with a 1 KB receive buffer could take such a certificate anyway.
 */
const UPPER_BOUND: Readonly<Record<string, number>> = {
  [OID.commonName]: 64,
  [OID.serialNumber]: 64,
  [OID.countryName]: 2,
  [OID.localityName]: 128,
  [OID.stateOrProvinceName]: 128,
  [OID.organizationName]: 64,
  [OID.organizationalUnitName]: 64,
  [OID.emailAddress]: 255,
};
const OTHER_VALUE = 128;
const MAX_ATTRIBUTES = 10;
/** The subject as the CSR encodes it, in bytes: what the certificate will carry. */
const MAX_SUBJECT_BYTES = 1024;

function checkSize(csr: ParsedCsr): void {
  if (csr.subject.length > MAX_ATTRIBUTES) refuse('BAD_SUBJECT', `the subject has ${csr.subject.length} attributes (at most ${MAX_ATTRIBUTES})`);
  if (csr.subjectDer.length > MAX_SUBJECT_BYTES) refuse('BAD_SUBJECT', `the subject is ${csr.subjectDer.length} bytes long (at most ${MAX_SUBJECT_BYTES})`);
  for (const a of csr.subject) {
    const bound = UPPER_BOUND[a.type] ?? OTHER_VALUE;
    if (a.value.length <= bound) continue; // UTF-16 units are never fewer than characters
    const n = [...a.value].length;
    if (n > bound) refuse('BAD_SUBJECT', `the subject's ${shortName(a.type)} value is ${n} characters long (at most ${bound})`);
  }
}

function refuse(code: 'BAD_CSR_SIGNATURE' | 'UNSUPPORTED_KEY' | 'BAD_SUBJECT', why: string): never {
  throw new LitebootError(code, `CSR refused: ${why}`);
}

/** `U+200B`: how a refused character is named in messages (never the character itself). */
export function codePointName(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Why a code point may not appear in a subject value, or undefined if it may. Control
 * characters (C0, DEL, C1) forge lines in logs and truncate C strings; format characters
 * (Unicode category Cf: zero-width, BIDI overrides, ...) make two different names look the
 * same; non-characters (Unicode §23.7) and lone surrogates are not text; U+FFFD is what a
 * decoder leaves of bytes that were not valid UTF-8.
 */
export function refusedCharacter(cp: number): string | undefined {
  if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f)) return 'a control character';
  if (cp >= 0xd800 && cp <= 0xdfff) return 'a lone surrogate';
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return 'a non-character';
  if (cp === 0xfffd) return 'the replacement character (the value was not valid text)';
  if (FORMAT.test(String.fromCodePoint(cp))) return 'an invisible format character (Unicode Cf)';
  // JSON and JavaScript consumers take U+2028/U+2029 for line breaks (found by an attack).
  if (cp === 0x2028 || cp === 0x2029) return 'a line or paragraph separator';
  return undefined;
}
const FORMAT = /^\p{Cf}$/u;

/** The value with every refused character replaced by `<U+XXXX>`, safe to show anywhere. */
function shown(value: string): string {
  let out = '';
  for (const ch of value) {
    const cp = ch.codePointAt(0)!;
    out += refusedCharacter(cp) ? `<${codePointName(cp)}>` : ch;
  }
  return out.length > 80 ? out.slice(0, 80) + '...' : out;
}

function checkCharacters(subject: DistinguishedName): void {
  for (const a of subject) {
    // for..of walks code points; a lone surrogate comes out as one UTF-16 unit.
    for (const ch of a.value) {
      const cp = ch.codePointAt(0)!;
      const why = refusedCharacter(cp);
      if (why) {
        refuse('BAD_SUBJECT', `the subject's ${shortName(a.type)} "${shown(a.value)}" contains ${codePointName(cp)}, ${why}; subject values may not hold control, format or non-characters`);
      }
    }
  }
}

/**
 * Folds a value for comparison: NFKC (fullwidth and other compatibility forms become plain
 * letters), case, runs of white space, and leading or trailing space.
 */
export function foldValue(v: string): string {
  // ASCII (every UUID CN, most OUs) is its own NFKC form: only case and spaces to fold.
  if (ASCII.test(v)) return v.toLowerCase().replace(/\s+/g, ' ').trim();
  return v.normalize('NFKC').toLowerCase().normalize('NFKC').replace(/\s+/gu, ' ').trim();
}
const ASCII = /^[\x00-\x7f]*$/;

/**
 * Letters that NFKC leaves alone but that look like the Latin ones in the reserved OUs
 * (Cyrillic and Greek homoglyphs, digits for letters; after lower-casing). A subset of Unicode
 * TR39 confusables, enough for `LinaroCA Bootstrap Cert` and `LinaroCA Operator Cert`.
 */
const CONFUSABLE: Record<string, string> = {
  'а': 'a', 'в': 'b', 'е': 'e', 'і': 'i', 'ӏ': 'l', 'о': 'o', 'р': 'p', 'с': 'c', 'ѕ': 's', 'т': 't', 'п': 'n',
  'α': 'a', 'ε': 'e', 'ι': 'i', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'η': 'n', 'ν': 'v', 'κ': 'k',
  'ı': 'i', 'ȷ': 'j', '0': 'o', '1': 'l', '|': 'l', 'ǀ': 'l',
  // Armenian and small-capital look-alikes (found by an attack).
  'օ': 'o', 'ս': 'u', 'հ': 'h', 'ո': 'n', 'ᴄ': 'c', 'ᴏ': 'o', 'ᴘ': 'p', 'ᴛ': 't', 'ᴀ': 'a', 'ʙ': 'b', 'ᴇ': 'e', 'ʀ': 'r', 'ɪ': 'i', 'ʟ': 'l', 'ɴ': 'n', 'ꜱ': 's',
};

/** The skeleton of an OU: folded, homoglyphs mapped to Latin, spaces and punctuation dropped. */
function skeleton(v: string): string {
  let k = skeletons.get(v);
  if (k === undefined) {
    k = skeletonOf(v);
    // Devices of one fleet send a handful of OUs: remember them. Bounded in count and in size (an
    // OU longer than X.520's 64 characters is not kept), never a memory sink.
    if (v.length <= 64) {
      if (skeletons.size >= 1024) skeletons.clear();
      skeletons.set(v, k);
    }
  }
  return k;
}
const skeletons = new Map<string, string>();

function skeletonOf(v: string): string {
  // Combining marks dropped too (NFD first): `Cert` with a dot below still reads as `Cert`.
  return [...foldValue(v).normalize('NFD').replace(/\p{M}/gu, '')].map((c) => CONFUSABLE[c] ?? c).join('').replace(/[\s\p{P}\p{S}]/gu, '');
}

const RESERVED_OUS = [BOOTSTRAP_OU, OPERATOR_OU].map(skeleton);

/**
 * Is this OU (its skeleton) a reserved one, or one written with other letters in some of its
 * places? A character outside ASCII that the table above does not know stands for any letter:
 * no table of homoglyphs is ever complete (an attack found Latin alpha and Cherokee letters
 * after the Armenian ones), and an OU that spells a reserved role in every ASCII place but
 * differs only where it has other letters is a look-alike by construction.
 */
function reservedOu(ou: string): boolean {
  const skel = skeleton(ou);
  if (RESERVED_OUS.includes(skel)) return true;
  if (ASCII.test(skel)) return false; // no other letters: only the exact spelling counts (every device's OU, every request)
  const k = [...skel];
  return RESERVED_OU_CHARS.some((want) => k.length === want.length && k.every((c, i) => c === want[i] || c.charCodeAt(0) > 0x7f));
}
const RESERVED_OU_CHARS = RESERVED_OUS.map((r) => [...r]);

/**
 * A canonical form of a name for "is this the same subject": each attribute as its OID and
 * folded value, sorted, so that neither case, compatibility forms, string types, attribute order
 * nor grouping into multi-valued RDNs makes a different name.
 */
export function subjectKey(name: DistinguishedName): string {
  return JSON.stringify(name.map((a) => [a.type, foldValue(a.value)]).sort((x, y) => (x[0]! + '\0' + x[1]! < y[0]! + '\0' + y[1]! ? -1 : 1)));
}

/** The reserved subject this one is (with the canonical CN, or as sent), if any; each key computed once. */
function reservedMatch(reserved: readonly ReservedSubject[], subject: DistinguishedName, asSent: DistinguishedName): ReservedSubject | undefined {
  const key = subjectKey(subject);
  // The CN as sent differs from the canonical one only in case or UUID form: the same key then.
  const sentKey = asSent.every((a, i) => a.value === subject[i]!.value) ? key : subjectKey(asSent);
  return reserved.find((r) => r.key === key || r.key === sentKey);
}

export function reservedSubject(what: string, name: DistinguishedName): ReservedSubject {
  return { what, key: subjectKey(name) };
}

/** RFC 5480 curves, Ed25519, and RSA of at least 2048 bits (NIST SP 800-131A). */
function checkKey(csr: ParsedCsr): void {
  const k = csr.key;
  if (k.type === 'EC' && (k.curve === 'P-256' || k.curve === 'P-384')) return;
  if (k.type === 'Ed25519') return;
  if (k.type === 'RSA' && k.bits >= 2048 && k.bits <= 8192) return;
  refuse('UNSUPPORTED_KEY', `a ${k.label} key is not accepted (use ECDSA P-256 or P-384, Ed25519, or RSA 2048-8192)`);
}

/**
 * Validates an enrolment request (API.md "stricter or better" 1-4): proof of possession, key
 * type, and a subject whose CN is the device id, whose values are plain text, whose OU claims
 * no privileged role and which is not the name of the CA or one of its credentials.
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
  // First, so that no later message quotes a control character.
  checkCharacters(csr.subject);
  checkSize(csr);
  const cns = csr.subject.filter((a) => a.type === OID.commonName);
  if (cns.length !== 1) refuse('BAD_SUBJECT', `the subject must have exactly one CN (has ${cns.length}: ${formatName(csr.subject) || 'empty'})`);
  const cn = cns[0]!.value;
  const uuid = canonicalUuid(cn);
  if (policy.requireUuid && !uuid) refuse('BAD_SUBJECT', `the CN "${shown(cn)}" is not a UUID`);
  if (!uuid && (cn.trim().length === 0 || cn.length > MAX_CN || /[/\\]/.test(cn))) refuse('BAD_SUBJECT', `the CN "${shown(cn)}" is not a usable device id`);
  const ous = csr.subject.filter((a) => a.type === OID.organizationalUnitName).map((a) => a.value);
  for (const ou of ous) {
    if (reservedOu(ou)) refuse('BAD_SUBJECT', `a device may not claim the OU "${shown(ou)}" (it is, or looks like, a reserved role)`);
  }
  const deviceId = uuid ?? cn;
  const subject = csr.subject.map((a) => (a.type === OID.commonName ? { type: a.type, value: deviceId } : a));
  const taken = policy.reservedSubjects?.length ? reservedMatch(policy.reservedSubjects, subject, csr.subject) : undefined;
  if (taken) refuse('BAD_SUBJECT', `the subject "${shown(formatName(subject))}" is ${taken.what} subject; a device may not take the name of the CA or of one of its credentials`);
  return { csr, deviceId, subject, ou: ous[0] ?? '', keyId: keyIdentifier(csr.spki) };
}
