/** The two body formats of the API. */
export type Format = 'cbor' | 'json';

export const MEDIA_TYPE: Readonly<Record<Format, string>> = { cbor: 'application/cbor', json: 'application/json' };

function mediaType(header: string): string {
  return header.split(';', 1)[0]!.trim().toLowerCase();
}

/**
 * The response format (API.md "Choosing the format"): the request Content-Type decides, for GET
 * requests too; media-type parameters and letter case are ignored. With no Content-Type, an
 * Accept that names application/cbor before application/json selects CBOR; otherwise JSON.
 * Returns undefined for an unsupported Content-Type.
 */
export function negotiate(contentType: string | undefined, accept: string | undefined): Format | undefined {
  if (contentType !== undefined && contentType.trim() !== '') {
    const t = mediaType(contentType);
    if (t === MEDIA_TYPE.cbor) return 'cbor';
    if (t === MEDIA_TYPE.json) return 'json';
    return undefined;
  }
  if (accept) {
    for (const part of accept.split(',')) {
      const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      if (params.some((p) => /^q=0(\.0*)?$/.test(p))) continue;
      if (type === MEDIA_TYPE.cbor) return 'cbor';
      if (type === MEDIA_TYPE.json) return 'json';
    }
  }
  return 'json';
}
