import { decodeCbor } from './cbor.js';
import { parseJsonExact } from './json.js';
import type { Format } from './format.js';

/**
 * The device's side of the wire: responses decoded into values, from CBOR or JSON. Used by the
 * client commands and by `decode-cbor`, which re-encodes them as the server's JSON.
 */
export type ResponseKind = 'csr' | 'cs' | 'ds' | 'cc' | 'ccs' | 'error';

export type Response =
  | { kind: 'csr'; status: number; der: Buffer }
  | { kind: 'cs'; status: number }
  | { kind: 'ds'; status: number; serials: bigint[] | null }
  | { kind: 'cc'; status: number; pem: string }
  | { kind: 'ccs'; hubname: string; port: number }
  | { kind: 'error'; error: string };

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `a byte string (${v.length} bytes)`;
  if (typeof v === 'string') return 'a text string';
  if (typeof v === 'number' || typeof v === 'bigint') return `the integer ${v}`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Map) return `a map with keys ${[...v.keys()].map((k) => JSON.stringify(typeof k === 'bigint' ? Number(k) : k)).join(', ')}`;
  return typeof v;
}

const uint = (v: unknown): bigint | undefined => (typeof v === 'bigint' && v >= 0n ? v : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined);

/** Which response a decoded CBOR map looks like (for `-r auto`). */
function guess(m: Map<unknown, unknown>): ResponseKind | undefined {
  const keys = [...m.keys()];
  if (keys.length === 1 && keys[0] === 'error' && typeof m.get('error') === 'string') return 'error';
  const v1 = m.get(1);
  const v2 = m.get(2);
  if (keys.length === 1 && uint(v1) !== undefined) return 'cs';
  if (keys.length !== 2) return undefined;
  if (typeof v1 === 'string' && uint(v2) !== undefined) return 'ccs';
  if (uint(v1) === undefined) return undefined;
  if (v2 instanceof Uint8Array) return 'csr';
  if (typeof v2 === 'string') return 'cc';
  if (v2 === null || Array.isArray(v2)) return 'ds';
  return undefined;
}

function fromMap(kind: ResponseKind, m: Map<unknown, unknown>): Response {
  const want = (ok: boolean, shape: string) => {
    if (!ok) throw new WireError(`not a ${kind} response: expected ${shape}, found ${describe(m)} (${[...m.values()].map(describe).join(', ')})`);
  };
  const status = Number(uint(m.get(1)) ?? -1);
  switch (kind) {
    case 'error':
      want(typeof m.get('error') === 'string', '{"error": text}');
      return { kind, error: m.get('error') as string };
    case 'cs':
      want(m.size === 1 && status >= 0, '{1: uint}');
      return { kind, status };
    case 'csr':
      want(m.size === 2 && status >= 0 && m.get(2) instanceof Uint8Array, '{1: uint, 2: bytes}');
      return { kind, status, der: Buffer.from(m.get(2) as Uint8Array) };
    case 'cc':
      want(m.size === 2 && status >= 0 && typeof m.get(2) === 'string', '{1: uint, 2: text}');
      return { kind, status, pem: m.get(2) as string };
    case 'ds': {
      const v = m.get(2);
      const serials = Array.isArray(v) ? v.map(uint) : null;
      want(m.size === 2 && status >= 0 && (v === null || (serials !== null && serials.every((x) => x !== undefined))), '{1: uint, 2: [uint...] or null}');
      return { kind, status, serials: serials as bigint[] | null };
    }
    case 'ccs':
      want(m.size === 2 && typeof m.get(1) === 'string' && uint(m.get(2)) !== undefined, '{1: text, 2: uint}');
      return { kind, hubname: m.get(1) as string, port: Number(uint(m.get(2))) };
  }
}

/** Decodes a CBOR response body as `kind` ('auto' guesses from its structure). */
export function decodeCborResponse(body: Uint8Array, kind: ResponseKind | 'auto'): Response {
  const d = decodeCbor(body);
  if (!d) throw new WireError(body.length === 0 ? 'the body is empty' : 'the body is not well-formed CBOR (truncated, or bytes after the item)');
  if (!(d.value instanceof Map)) throw new WireError(`expected a CBOR map, found ${describe(d.value)}`);
  const k = kind === 'auto' ? guess(d.value) : kind;
  if (!k) throw new WireError(`cannot tell which response this is: ${describe(d.value)}`);
  if (kind !== 'auto' && kind !== 'error' && guess(d.value) === 'error') {
    throw new WireError(`the body is an error response: ${String(d.value.get('error'))}`);
  }
  return fromMap(k, d.value);
}

/** Decodes a JSON response body (the server's shapes). */
export function decodeJsonResponse(body: Uint8Array, kind: ResponseKind): Response {
  const d = parseJsonExact(Buffer.from(body).toString('utf8'));
  if (!d || typeof d.value !== 'object' || d.value === null || Array.isArray(d.value)) throw new WireError('the body is not a JSON object');
  const o = d.value as Record<string, unknown>;
  if (typeof o.error === 'string') return { kind: 'error', error: o.error };
  const m = new Map<unknown, unknown>();
  if (kind === 'ccs') {
    m.set(1, o.Hubname);
    m.set(2, o.Port);
  } else {
    m.set(1, o.Status);
    if (kind === 'csr') m.set(2, typeof o.Cert === 'string' ? Buffer.from(o.Cert, 'base64') : o.Cert);
    if (kind === 'cc') m.set(2, o.Cert);
    if (kind === 'ds') m.set(2, o.Serials);
  }
  return fromMap(kind, m);
}

export function decodeResponse(format: Format, body: Uint8Array, kind: ResponseKind): Response {
  return format === 'cbor' ? decodeCborResponse(body, kind) : decodeJsonResponse(body, kind);
}

/** The server's JSON for a response (what `decode-cbor` prints), without the trailing newline. */
export function responseAsJson(r: Response): string {
  switch (r.kind) {
    case 'csr':
      return `{"Status":${r.status},"Cert":"${r.der.toString('base64')}"}`;
    case 'cs':
      return `{"Status":${r.status}}`;
    case 'ds':
      return `{"Status":${r.status},"Serials":${r.serials === null ? 'null' : `[${r.serials.join(',')}]`}}`;
    case 'cc':
      return `{"Status":${r.status},"Cert":${JSON.stringify(r.pem)}}`;
    case 'ccs':
      return `{"Hubname":${JSON.stringify(r.hubname)},"Port":${r.port}}`;
    case 'error':
      return `{"error":${JSON.stringify(r.error)}}`;
  }
}
