import { cborMap, decodeCbor, encodeCbor } from './cbor.js';
import type { Format } from './format.js';
import { parseJsonExact } from './json.js';

/**
 * Every message of the API (API.md "Endpoints"), in both formats. Success bodies are the
 * contract's bytes: CBOR maps with integer keys, compact JSON with PascalCase keys and one `\n`.
 */

const base64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** POST /cr and /kur: `{1: 0, 2: h'<DER>'}` or `{"Status":0,"Cert":"<base64>"}`. */
export function certificateResponse(f: Format, der: Uint8Array): Buffer {
  if (f === 'cbor') return encodeCbor(cborMap([1, 0], [2, der]));
  return Buffer.from(`{"Status":0,"Cert":"${base64(der)}"}\n`);
}

/** GET /cs: `{1: 1}` valid, `{1: 0}` revoked. */
export function certStatusResponse(f: Format, valid: boolean): Buffer {
  const s = valid ? 1 : 0;
  if (f === 'cbor') return encodeCbor(cborMap([1, s]));
  return Buffer.from(`{"Status":${s}}\n`);
}

/** GET /ds: `{1: 1, 2: [serials]}`, or `{1: 0, 2: null}` when there are none. */
export function deviceStatusResponse(f: Format, serials: readonly bigint[]): Buffer {
  const has = serials.length > 0;
  if (f === 'cbor') return encodeCbor(cborMap([1, has ? 1 : 0], [2, has ? [...serials] : null]));
  return Buffer.from(`{"Status":${has ? 1 : 0},"Serials":${has ? `[${serials.join(',')}]` : 'null'}}\n`);
}

/** GET /cc: `{1: 0, 2: "<PEM>"}` (a text string) or `{"Status":0,"Cert":"<PEM>"}`. */
export function certCopyResponse(f: Format, pem: string): Buffer {
  if (f === 'cbor') return encodeCbor(cborMap([1, 0], [2, pem]));
  return Buffer.from(`{"Status":0,"Cert":${JSON.stringify(pem)}}\n`);
}

/** GET /ccs: `{1: "<hub>", 2: <port>}` or `{"Hubname":"<hub>","Port":<port>}`. */
export function cloudSettingsResponse(f: Format, hubname: string, port: number): Buffer {
  if (f === 'cbor') return encodeCbor(cborMap([1, hubname], [2, port]));
  return Buffer.from(`{"Hubname":${JSON.stringify(hubname)},"Port":${port}}\n`);
}

/** POST /krr: `{1: 0}` or `{"Status":0}`. */
export function revokeResponse(f: Format): Buffer {
  if (f === 'cbor') return encodeCbor(cborMap([1, 0]));
  return Buffer.from('{"Status":0}\n');
}

/** Errors: `{"error": "<message>"}` in the negotiated format (a text key in CBOR too). */
export function errorResponse(f: Format, message: string): Buffer {
  if (f === 'cbor') return encodeCbor(cborMap(['error', message]));
  return Buffer.from(`{"error":${JSON.stringify(message)}}\n`);
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The body of /cr and /kur: CBOR `[h'<CSR DER>']` or JSON `{"CSR":"<base64 DER>"}`.
 * Returns undefined when the body does not decode as the declared format.
 */
export function decodeCsrRequest(f: Format, body: Uint8Array): Uint8Array | undefined {
  if (f === 'cbor') {
    const d = decodeCbor(body);
    if (!d || !Array.isArray(d.value) || d.value.length !== 1 || !(d.value[0] instanceof Uint8Array)) return undefined;
    return d.value[0];
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const csr = (v as Record<string, unknown>).CSR;
  if (typeof csr !== 'string' || csr.length === 0 || !STRICT_BASE64.test(csr)) return undefined;
  return Buffer.from(csr, 'base64');
}

export interface RevokeRequest {
  serial: bigint;
  /** RFC 5280 §5.3.1 CRLReason; 0 (unspecified) when absent. */
  reason: number;
}

function uint(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v >= 0n ? v : undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return undefined;
}

/** The body of /krr: CBOR `{1: serial, ?2: reason}` or JSON `{"Serial": n, "Reason": n}`. */
export function decodeRevokeRequest(f: Format, body: Uint8Array): RevokeRequest | undefined {
  let serial: unknown;
  let reason: unknown;
  if (f === 'cbor') {
    const d = decodeCbor(body);
    if (!d || !(d.value instanceof Map)) return undefined;
    for (const k of d.value.keys()) if (k !== 1 && k !== 2) return undefined;
    serial = d.value.get(1);
    reason = d.value.get(2);
  } else {
    const d = parseJsonExact(Buffer.from(body).toString('utf8'));
    if (!d || typeof d.value !== 'object' || d.value === null || Array.isArray(d.value)) return undefined;
    const o = d.value as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'Serial' && k !== 'Reason') return undefined;
    serial = o.Serial;
    reason = o.Reason;
  }
  const s = uint(serial);
  const r = reason === undefined ? 0n : uint(reason);
  if (s === undefined || r === undefined || r > 255n) return undefined;
  return { serial: s, reason: Number(r) };
}
