import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { buildCsr } from '../../src/asn1/csr.js';
import { bitString, contextConstructed, oid, sequence, set, TAG, tlv } from '../../src/asn1/der.js';
import { generateKey, spkiDer } from '../../src/asn1/keys.js';
import { dn, type DistinguishedName } from '../../src/asn1/name.js';
import { OID } from '../../src/asn1/oids.js';
import { algorithmDer, keySigner } from '../../src/asn1/signer.js';
import { acceptCsr, reservedSubject, type IssuancePolicy } from '../../src/ca/policy.js';

const key = generateKey();
const UUID = '0b6f4ce0-9d3c-4c5b-8d6b-3c9f1e0e2a11';
const CA = dn({ O: 'Linaro, LTD', CN: 'LRC - 20261126194254' });
const SERVER = dn({ O: 'Linaro, LTD', CN: 'localhost' });
const FACTORY = dn({ O: 'Factory', CN: 'line-7' }); // a BOOTSTRAP-*.crt without the reserved OU
const reservedSubjects = [reservedSubject("the CA certificate's", CA), reservedSubject("the server certificate's", SERVER), reservedSubject("a bootstrap credential's", FACTORY)];
const strict: IssuancePolicy = { requireUuid: true, reservedSubjects };
const relaxed: IssuancePolicy = { requireUuid: false, reservedSubjects };

/** One attribute as raw DER: any string tag, any bytes (what openssl and our encoder won't write). */
const atv = (type: string, tag: number, bytes: Buffer) => set(sequence(oid(type), tlv(tag, bytes)));
const utf8 = (type: string, s: string) => atv(type, TAG.UTF8_STRING, Buffer.from(s, 'utf8'));

/** A CSR signed by `k` whose subject is the given RDNs, exactly as given. */
async function csrWithName(rdns: Buffer[], k: KeyObject = key): Promise<Buffer> {
  const signer = keySigner(k);
  const info = sequence(tlv(TAG.INTEGER, Buffer.from([0])), sequence(...rdns), spkiDer(k), contextConstructed(0));
  return sequence(info, algorithmDer(signer.algorithm), bitString(await signer.sign(info)));
}

const sub = (o: Record<string, string>) => buildCsr(dn(o), key);
const withOu = (ou: string) => csrWithName([utf8(OID.organizationName, 'Test Vendor'), utf8(OID.organizationalUnitName, ou), utf8(OID.commonName, UUID)]);
const withO = (o: string) => csrWithName([utf8(OID.organizationName, o), utf8(OID.commonName, UUID)]);

interface Case {
  name: string;
  csr: () => Promise<Buffer>;
  policy?: IssuancePolicy;
  /** A pattern the message must match; undefined: accepted. */
  refused?: RegExp;
  subject?: DistinguishedName;
}

const CASES: Case[] = [
  // accepted
  { name: 'a plain device subject', csr: () => sub({ O: 'Test Vendor', OU: 'Signing', CN: UUID }) },
  { name: 'non-ASCII letters are text', csr: () => sub({ O: 'Größe 東京 Ελλάδα', OU: 'Ünïcode', CN: UUID }) },
  { name: 'an upper-case UUID is made canonical', csr: () => sub({ O: 'Test Vendor', CN: UUID.toUpperCase() }), subject: dn({ O: 'Test Vendor', CN: UUID }) },
  { name: 'require_uuid = false: a plain device name', policy: relaxed, csr: () => sub({ O: 'Test Vendor', CN: 'sensor-12' }) },
  { name: 'require_uuid = false: the CA organisation with another CN', policy: relaxed, csr: () => sub({ O: 'Linaro, LTD', CN: 'sensor-12' }) },
  { name: 'an OU that merely mentions LinaroCA', csr: () => sub({ OU: 'LinaroCA Operator Cert Holders Club', CN: UUID }) },
  { name: 'values at RFC 5280 upper bounds', csr: () => sub({ C: 'SE', ST: 's'.repeat(128), O: 'o'.repeat(64), OU: 'u'.repeat(64), CN: UUID }) },
  // refused: size (a bootstrap holder must not fill the store with 16 KB certificates)
  { name: 'an O one character over its bound', csr: () => withO('o'.repeat(65)), refused: /the subject's O value is 65 characters long \(at most 64\)/ },
  { name: 'four O values of 3990 characters', csr: () => csrWithName([...Array(4)].map(() => utf8(OID.organizationName, 'o'.repeat(3990))).concat(utf8(OID.commonName, UUID))), refused: /the subject is 16079 bytes long \(at most 1024\)/ },
  { name: 'a three-letter C', csr: () => sub({ C: 'SWE', CN: UUID }), refused: /C value is 3 characters long \(at most 2\)/ },
  { name: 'an attribute of another type past 128 characters', csr: () => csrWithName([utf8('2.5.4.12', 't'.repeat(129)), utf8(OID.commonName, UUID)]), refused: /value is 129 characters long \(at most 128\)/ },
  { name: 'eleven attributes', csr: () => csrWithName([...Array(10)].map((_, i) => utf8(OID.organizationalUnitName, `unit ${i}`)).concat(utf8(OID.commonName, UUID))), refused: /the subject has 11 attributes \(at most 10\)/ },
  { name: 'a subject over 1 KB within every value bound', csr: () => csrWithName([...Array(8)].map(() => utf8(OID.localityName, '東'.repeat(128))).concat(utf8(OID.commonName, UUID))), refused: /the subject is \d{4} bytes long \(at most 1024\)/ },
  // refused: characters
  { name: 'NUL after the operator OU', csr: () => withOu('LinaroCA Operator Cert\0'), refused: /OU "LinaroCA Operator Cert<U\+0000>" contains U\+0000, a control character/ },
  { name: 'LF (forges a log line)', csr: () => withO('Test\nINFO forged line'), refused: /O "Test<U\+000A>INFO forged line" contains U\+000A/ },
  { name: 'CR', csr: () => withO('Test\rVendor'), refused: /U\+000D, a control character/ },
  { name: 'TAB', csr: () => withO('Test\tVendor'), refused: /U\+0009/ },
  { name: 'DEL', csr: () => withO('Test\x7fVendor'), refused: /U\+007F, a control character/ },
  { name: 'C1 NEL', csr: () => withO('Test\u0085Vendor'), refused: /U\+0085, a control character/ },
  { name: 'zero-width space', csr: () => withOu('Sign\u200bing'), refused: /OU "Sign<U\+200B>ing" contains U\+200B, an invisible format character/ },
  { name: 'zero-width joiner in the CN', policy: relaxed, csr: () => csrWithName([utf8(OID.commonName, 'dev\u200dice')]), refused: /CN "dev<U\+200D>ice" contains U\+200D/ },
  { name: 'BIDI override', csr: () => withO('Vendor \u202egnp.exe'), refused: /U\+202E, an invisible format character/ },
  { name: 'byte order mark', csr: () => withO('\ufeffVendor'), refused: /U\+FEFF/ },
  { name: 'soft hyphen', csr: () => withO('Ven\u00addor'), refused: /U\+00AD/ },
  { name: 'a tag character (plane 14)', csr: () => withO('Vendor\u{E0041}'), refused: /U\+E0041/ },
  { name: 'non-character U+FDD0', csr: () => withO('Vendor\ufdd0'), refused: /U\+FDD0, a non-character/ },
  { name: 'non-character U+FFFE', csr: () => withO('Vendor\ufffe'), refused: /U\+FFFE, a non-character/ },
  { name: 'non-character U+1FFFF', csr: () => withO('Vendor\u{1FFFF}'), refused: /U\+1FFFF, a non-character/ },
  {
    name: 'a lone surrogate (BMPString)',
    csr: () => csrWithName([atv(OID.organizationName, TAG.BMP_STRING, Buffer.from([0x00, 0x41, 0xd8, 0x00])), utf8(OID.commonName, UUID)]),
    refused: /O "A<U\+D800>" contains U\+D800, a lone surrogate/,
  },
  {
    name: 'bytes that are not UTF-8 in a UTF8String',
    csr: () => csrWithName([atv(OID.organizationName, TAG.UTF8_STRING, Buffer.from([0x41, 0xff, 0x42])), utf8(OID.commonName, UUID)]),
    refused: /U\+FFFD, the replacement character/,
  },
  {
    name: 'a control character in a multi-valued RDN',
    csr: () => csrWithName([set(sequence(oid(OID.organizationName), tlv(TAG.UTF8_STRING, Buffer.from('ok'))), sequence(oid(OID.organizationalUnitName), tlv(TAG.UTF8_STRING, Buffer.from('a\u0007b')))), utf8(OID.commonName, UUID)]),
    refused: /OU "a<U\+0007>b"/,
  },
  // refused: reserved OUs and their look-alikes
  { name: 'the operator OU', csr: () => sub({ OU: 'LinaroCA Operator Cert', CN: UUID }), refused: /may not claim the OU "LinaroCA Operator Cert"/ },
  { name: 'the bootstrap OU, other case, padded', csr: () => sub({ OU: '  linaroca BOOTSTRAP cert ', CN: UUID }), refused: /may not claim the OU/ },
  { name: 'the operator OU in fullwidth letters', csr: () => withOu('ＬｉｎａｒｏＣＡ Ｏｐｅｒａｔｏｒ Ｃｅｒｔ'), refused: /may not claim the OU "ＬｉｎａｒｏＣＡ/ },
  { name: 'the operator OU with a no-break space', csr: () => withOu('LinaroCA\u00a0Operator Cert'), refused: /may not claim the OU/ },
  { name: 'the operator OU with an ideographic space and a double space', csr: () => withOu('LinaroCA\u3000Operator  Cert'), refused: /may not claim the OU/ },
  { name: 'the operator OU with a Cyrillic o', csr: () => withOu('LinaroCA Operat\u043er Cert'), refused: /may not claim the OU/ },
  // Found by an attack: Armenian o, a small capital C, a combining mark, and the line separators.
  { name: 'the operator OU with an Armenian o', csr: () => withOu('LinaroCA Operat\u0585r Cert'), refused: /may not claim the OU/ },
  { name: 'the bootstrap OU with Armenian os', csr: () => withOu('LinaroCA B\u0585\u0585tstrap Cert'), refused: /may not claim the OU/ },
  // Found by a second attack, in no table: Latin alpha (IPA) and Cherokee letters. Any non-ASCII letter in an otherwise reserved spelling is refused.
  { name: 'the operator OU with Latin alphas', csr: () => withOu('Lin\u0251roCA Oper\u0251tor Cert'), refused: /may not claim the OU/ },
  { name: 'the operator OU with Cherokee letters', csr: () => withOu('Linaro\u13df\u13aa Operator \u13dfert'), refused: /may not claim the OU/ },
  { name: 'an OU with non-ASCII letters that spells no reserved role', csr: () => withOu('LinaroCA Öperations Team') },
  { name: 'the operator OU with a small capital C', csr: () => withOu('Linaro\u1d04A Operator Cert'), refused: /may not claim the OU/ },
  { name: 'the operator OU with a combining dot below', csr: () => withOu('LinaroCA Operator Cert\u0323'), refused: /may not claim the OU/ },
  { name: 'U+2028 line separator', csr: () => withO('Test\u2028FAKE LINE'), refused: /U\+2028, a line or paragraph separator/ },
  { name: 'U+2029 paragraph separator', csr: () => withO('Test\u2029Vendor'), refused: /U\+2029, a line or paragraph separator/ },
  { name: 'the bootstrap OU with a Greek omicron and a zero', csr: () => withOu('Linar\u03bfCA B0otstrap Cert'), refused: /may not claim the OU/ },
  { name: 'the operator OU with dashes', csr: () => withOu('LinaroCA-Operator-Cert'), refused: /may not claim the OU/ },
  { name: 'the operator OU in mathematical bold', csr: () => withOu('𝐋𝐢𝐧𝐚𝐫𝐨𝐂𝐀 𝐎𝐩𝐞𝐫𝐚𝐭𝐨𝐫 𝐂𝐞𝐫𝐭'), refused: /may not claim the OU/ },
  // refused: the names of the CA and its credentials, whatever require_uuid says
  { name: "require_uuid = false: the CA's subject", policy: relaxed, csr: () => buildCsr(CA, key), refused: /is the CA certificate's subject/ },
  { name: "the CA's subject in another case, order and grouping", policy: relaxed, csr: () => csrWithName([set(sequence(oid(OID.commonName), tlv(TAG.UTF8_STRING, Buffer.from('lrc - 20261126194254'))), sequence(oid(OID.organizationName), tlv(TAG.PRINTABLE_STRING, Buffer.from('LINARO, LTD'))))]), refused: /is the CA certificate's subject/ },
  { name: "the CA's subject in fullwidth letters", policy: relaxed, csr: () => buildCsr(dn({ O: 'Ｌｉｎａｒｏ, LTD', CN: 'LRC - ２０２６１１２６１９４２５４' }), key), refused: /is the CA certificate's subject/ },
  { name: "the server's subject", policy: relaxed, csr: () => buildCsr(SERVER, key), refused: /is the server certificate's subject/ },
  { name: "a bootstrap credential's subject without the reserved OU", policy: relaxed, csr: () => buildCsr(FACTORY, key), refused: /is a bootstrap credential's subject/ },
  // refused: the CN
  { name: 'no CN', csr: () => sub({ O: 'Test Vendor' }), refused: /exactly one CN/ },
  { name: 'a CN that is not a UUID', csr: () => sub({ CN: 'sensor-12' }), refused: /the CN "sensor-12" is not a UUID/ },
];

describe('issuance policy: subjects', () => {
  for (const c of CASES) {
    test(`${c.refused ? 'refused' : 'accepted'}: ${c.name}`, async () => {
      const der = await c.csr();
      const policy = c.policy ?? strict;
      if (!c.refused) {
        const r = await acceptCsr(der, policy);
        if (c.subject) assert.deepEqual(r.subject, c.subject);
        return;
      }
      await assert.rejects(
        () => acceptCsr(der, policy),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'BAD_SUBJECT', e.message);
          assert.match(e.message, /^CSR refused: /);
          assert.match(e.message, c.refused!);
          // The message names bad characters; it never carries them.
          assert.doesNotMatch(e.message, /[\p{Cc}\p{Cf}\p{Cs}\ufffd]/u, JSON.stringify(e.message));
          return true;
        },
      );
    });
  }

  test('a CSR whose attribute type is a 16 KB OBJECT IDENTIFIER is refused as malformed, naming the bound', async () => {
    const longType = set(sequence(tlv(TAG.OID, Buffer.concat([Buffer.from([0x2a]), Buffer.alloc(16_000, 0x81), Buffer.from([0x01])])), tlv(TAG.UTF8_STRING, Buffer.from('x'))));
    const der = await csrWithName([longType, utf8(OID.commonName, UUID)]);
    await assert.rejects(() => acceptCsr(der, strict), (e: Error & { code?: string }) => e.code === 'BAD_CSR' && /an OBJECT IDENTIFIER longer than 64 octets/.test(e.message));
  });

  test('without reserved subjects given, the CA-looking subject still needs require_uuid off', async () => {
    await assert.rejects(() => acceptCsr(Buffer.from([0x30, 0x00]), strict), (e: Error & { code?: string }) => e.code === 'BAD_CSR');
    await acceptCsr(await buildCsr(CA, key), { requireUuid: false }); // nothing reserved: accepted
  });
});
