/**
 * The framing of EST bodies (RFC 7030 §4, as RFC 8951 clarifies it), for both ends: base64 of
 * DER, whatever a Content-Transfer-Encoding header says, white space and line breaks allowed.
 */

export const EST_MEDIA = {
  csr: 'application/pkcs10',
  /** RFC 7030 §4.1.3: /cacerts answers application/pkcs7-mime. */
  cacerts: 'application/pkcs7-mime',
  /** RFC 7030 §4.2.3: enrolment answers carry the smime-type. */
  certsOnly: 'application/pkcs7-mime; smime-type=certs-only',
  csrattrs: 'application/csrattrs',
} as const;

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaTypeOf(header: string | undefined): string {
  return (header ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/**
 * Base64 in lines of 64, as RFC 7030's examples. The line ends are `\n`, not MIME's CRLF:
 * coreutils `base64 -d`, the shell's EST client, refuses a `\r`.
 */
export function encodeEstBody(der: Uint8Array): Buffer {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let text = '';
  for (let i = 0; i < b64.length; i += 64) text += b64.slice(i, i + 64) + '\n';
  return Buffer.from(text, 'latin1');
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The DER inside a base64 body, or undefined when it is not base64 (or empty). */
export function decodeEstBody(body: Uint8Array): Buffer | undefined {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1').replace(/[\r\n\t ]+/g, '');
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}
