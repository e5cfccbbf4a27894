/**
 * Device ids are UUIDs (RFC 9562). Accepted in the forms a UUID parser takes (upper or lower
 * case, braces, `urn:uuid:`, no hyphens) and compared in the canonical lower-case form.
 */
const HEX32 = /^[0-9a-f]{32}$/;

export function canonicalUuid(text: string): string | undefined {
  let s = text.trim().toLowerCase();
  if (s.startsWith('urn:uuid:')) s = s.slice(9);
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  let hex: string;
  if (s.length === 36) {
    if (s[8] !== '-' || s[13] !== '-' || s[18] !== '-' || s[23] !== '-') return undefined;
    hex = s.replace(/-/g, '');
  } else if (s.length === 32) {
    hex = s;
  } else {
    return undefined;
  }
  if (!HEX32.test(hex)) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
