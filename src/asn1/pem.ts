import { LitebootError } from '../errors.js';

/** RFC 7468 textual encoding: one labelled base64 block, 64 columns, `\n` line ends. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Every PEM block in `text`, in order. Headers (RFC 1421 `Proc-Type:` lines) are refused. */
export function parsePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const b64 = m[2]!.replace(/\s+/g, '');
    if (!BASE64.test(b64) || b64.length % 4 !== 0) {
      throw new LitebootError('BAD_PEM', `the PEM block "${m[1]}" does not hold valid base64`);
    }
    blocks.push({ label: m[1]!, der: Buffer.from(b64, 'base64') });
  }
  return blocks;
}

export function looksLikePem(data: Uint8Array): boolean {
  const head = Buffer.from(data.subarray(0, 2048)).toString('latin1');
  return head.includes('-----BEGIN ');
}

/** The one block labelled `label` in `text`; an error if there is none or more than one. */
export function parsePemOne(text: string, label: string, what: string): Buffer {
  const blocks = parsePemBlocks(text).filter((b) => b.label === label);
  if (blocks.length !== 1) {
    throw new LitebootError(
      'BAD_PEM',
      blocks.length === 0
        ? `${what}: no "-----BEGIN ${label}-----" block found`
        : `${what}: expected one ${label} block, found ${blocks.length}`,
    );
  }
  return blocks[0]!.der;
}
