/**
 * The C-source copies of credentials that firmware builds include (the original's
 * setup scripts wrote them with sed and `xxd -i`).
 */

/** Each PEM line as a C string literal ending in CRLF: `"-----BEGIN CERTIFICATE-----\r\n"`. */
export function pemAsCStrings(pem: string): string {
  return pem
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => `"${line}\\r\\n"\n`)
    .join('');
}

/** Bytes as `xxd -i` prints them: two spaces of indent, 12 bytes a line, `0x%02x` joined by ", ". */
export function bytesAsXxdInclude(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 12) {
    const chunk = Array.from(bytes.subarray(i, i + 12), (b) => '0x' + b.toString(16).padStart(2, '0'));
    lines.push('  ' + chunk.join(', '));
  }
  return lines.join(',\n') + '\n';
}
