import { parsePemBlocks, toPem } from '../asn1/pem.js';
import type { Authority, Caller } from '../ca/authority.js';
import { canonicalUuid } from '../ca/uuid.js';
import type { Registrar } from '../cloud/registrar.js';
import { parseJsonExact } from '../protocol/json.js';
import { LitebootError } from '../errors.js';
import type { Format } from '../protocol/format.js';
import { MEDIA_TYPE } from '../protocol/format.js';
import {
  certCopyResponse,
  certificateResponse,
  certStatusResponse,
  cloudSettingsResponse,
  decodeCsrRequest,
  decodeRevokeRequest,
  deviceStatusResponse,
  revokeResponse,
} from '../protocol/messages.js';
import { extractUpload, UPLOAD_ERRORS } from '../protocol/multipart.js';

/** What a handler gets: the decoded request and who sent it. */
export interface RequestContext {
  format: Format;
  caller: Caller;
  params: readonly string[];
  body: Buffer;
  contentType: string | undefined;
}

export interface Reply {
  status: number;
  contentType: string;
  body: Buffer;
  headers?: Record<string, string>;
  /** The serial issued or asked about, for the request log. */
  serial?: bigint;
}

export interface Deps {
  authority: Authority;
  registrar: Registrar;
  hubname: string;
  mqttport: number;
  uploadBytes: number;
  banner: string;
  /** The CA certificate, DER (EST cacerts). */
  caDer: Buffer;
}

export type Handler = (ctx: RequestContext, deps: Deps) => Promise<Reply>;

const ok = (ctx: RequestContext, body: Buffer, serial?: bigint): Reply => ({ status: 200, contentType: MEDIA_TYPE[ctx.format], body, serial });

/** A decimal serial from the path; anything else is `invalid request` (API.md errors). */
function serialParam(text: string): bigint {
  if (!/^[0-9]{1,40}$/.test(text)) throw new LitebootError('BAD_SERIAL', 'invalid request');
  return BigInt(text);
}

function csrBody(ctx: RequestContext): Uint8Array {
  const csr = decodeCsrRequest(ctx.format, ctx.body);
  if (!csr) throw new LitebootError('BAD_BODY', 'bad request: POST data did not match specified Content-Type');
  return csr;
}

// Each handler: decode -> (authorization is the route's) -> call the authority -> encode.

export const enrol: Handler = async (ctx, d) => {
  const issued = await d.authority.enrol(csrBody(ctx), ctx.caller);
  return ok(ctx, certificateResponse(ctx.format, issued.der), issued.serial);
};

export const keyUpdate: Handler = async (ctx, d) => {
  const issued = await d.authority.keyUpdate(csrBody(ctx), ctx.caller);
  return ok(ctx, certificateResponse(ctx.format, issued.der), issued.serial);
};

export const uploadEnrol: Handler = async (ctx, d) => {
  const up = extractUpload(ctx.contentType, ctx.body, 'csrfile', d.uploadBytes);
  if ('error' in up) throw new LitebootError('BAD_UPLOAD', up.error);
  let blocks;
  try {
    blocks = parsePemBlocks(up.file.toString('utf8'));
  } catch {
    throw new LitebootError('BAD_UPLOAD', UPLOAD_ERRORS.notOneBlock);
  }
  if (blocks.length !== 1) throw new LitebootError('BAD_UPLOAD', UPLOAD_ERRORS.notOneBlock);
  if (blocks[0]!.label !== 'CERTIFICATE REQUEST') throw new LitebootError('BAD_UPLOAD', UPLOAD_ERRORS.notCsr);
  const issued = await d.authority.enrol(blocks[0]!.der, ctx.caller, 'p10cr');
  return {
    status: 200,
    contentType: 'application/x-pem-file',
    headers: { 'Content-Disposition': `attachment; filename=${issued.deviceId.replace(/[^A-Za-z0-9._-]/g, '_')}.crt` },
    body: Buffer.from(toPem('CERTIFICATE', issued.der)),
    serial: issued.serial,
  };
};

export const certStatus: Handler = async (ctx, d) => {
  const serial = serialParam(ctx.params[0]!);
  return ok(ctx, certStatusResponse(ctx.format, await d.authority.certificateStatus(serial)), serial);
};

export const certCopy: Handler = async (ctx, d) => {
  const serial = serialParam(ctx.params[0]!);
  return ok(ctx, certCopyResponse(ctx.format, await d.authority.certificateCopy(serial)), serial);
};

export const deviceStatus: Handler = async (ctx, d) => {
  let uuid: string;
  try {
    uuid = decodeURIComponent(ctx.params[0]!); // `urn:uuid:` and braces may arrive escaped
  } catch {
    throw new LitebootError('BAD_UUID', 'need a valid UUID'); // a malformed %-escape
  }
  return ok(ctx, deviceStatusResponse(ctx.format, await d.authority.deviceSerials(uuid)));
};

export const cloudSettings: Handler = async (ctx, d) => ok(ctx, cloudSettingsResponse(ctx.format, d.hubname, d.mqttport));

export const revoke: Handler = async (ctx, d) => {
  const req = decodeRevokeRequest(ctx.format, ctx.body);
  if (!req) throw new LitebootError('BAD_BODY', 'bad request: POST data did not match specified Content-Type');
  await d.authority.revoke(req.serial, req.reason, ctx.caller);
  return ok(ctx, revokeResponse(ctx.format), req.serial);
};

export const crl: Handler = async (_ctx, d) => ({ status: 200, contentType: 'application/pkix-crl', body: (await d.authority.crls.crl()).der });

export const banner: Handler = async (_ctx, d) => ({ status: 200, contentType: 'text/plain; charset=utf-8', body: Buffer.from(d.banner) });

/**
 * An operator's "register now" (not part of the device contract): JSON `{"DeviceId": "<uuid>"}`
 * for one device, `{}` for every device not yet registered. Answers `{"Status":0,"Devices":n}`.
 */
export const registerNow: Handler = async (ctx, d) => {
  const parsed = ctx.body.length ? parseJsonExact(ctx.body.toString('utf8')) : { value: {} };
  const v = parsed?.value;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new LitebootError('BAD_BODY', 'bad request: POST data did not match specified Content-Type');
  const raw = (v as Record<string, unknown>).DeviceId;
  let id: string | undefined;
  if (raw !== undefined) {
    id = typeof raw === 'string' ? canonicalUuid(raw) : undefined;
    if (!id) throw new LitebootError('BAD_UUID', 'need a valid UUID');
  }
  const n = await d.registrar.retryNow(id);
  return { status: 200, contentType: MEDIA_TYPE.json, body: Buffer.from(`{"Status":0,"Devices":${n}}\n`) };
};

/**
 * An operator's change to the enrolment allowlist (not part of the device contract): JSON
 * `{"Allow": ["<uuid>", ...]}` or `{"Disallow": [...]}`. Answers `{"Status":0,"Changed":n}`.
 */
export const allowlist: Handler = async (ctx, d) => {
  const v = parseJsonExact(ctx.body.toString('utf8'))?.value;
  const bad = () => new LitebootError('BAD_BODY', 'bad request: POST data did not match specified Content-Type');
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad();
  const keys = Object.keys(v);
  if (keys.length !== 1 || (keys[0] !== 'Allow' && keys[0] !== 'Disallow')) throw bad();
  const ids = (v as Record<string, unknown>)[keys[0]!];
  if (!Array.isArray(ids) || ids.length > 100_000 || !ids.every((i) => typeof i === 'string')) throw bad();
  const n = await d.authority.changeAllowlist(keys[0] === 'Allow' ? 'allow' : 'disallow', ids as string[], ctx.caller.label);
  return { status: 200, contentType: MEDIA_TYPE.json, body: Buffer.from(`{"Status":0,"Changed":${n}}\n`) };
};
