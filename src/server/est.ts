/**
 * Enrollment over Secure Transport (RFC 7030, with the RFC 8951 clarifications) under
 * /.well-known/est/ on the REST port: the same mutual TLS, the same authority use cases and
 * rules as /api/v1/cr and /kur; only the framing differs (base64 DER bodies, PKCS#7 answers,
 * text/plain errors).
 */
import { encodeCsrAttrs } from '../asn1/csr-attrs.js';
import { OID } from '../asn1/oids.js';
import { certsOnly } from '../asn1/pkcs7.js';
import { LitebootError } from '../errors.js';
import { decodeEstBody, encodeEstBody, EST_MEDIA, mediaTypeOf } from '../protocol/est.js';
import type { Handler, Reply, RequestContext } from './handlers.js';

/**
 * RFC 7030 §4.5.2: what our CSRs need (src/ca/policy.ts): an EC key on P-256 or P-384, signed
 * with ECDSA and the matching hash. The policy also takes Ed25519 and RSA 2048-8192 keys; they
 * are not asked for.
 */
const CSR_ATTRS = encodeCsrAttrs([
  { type: OID.ecPublicKey, values: [OID.prime256v1, OID.secp384r1] },
  { oid: OID.ecdsaWithSHA256 },
  { oid: OID.ecdsaWithSHA384 },
]);

function csrBody(ctx: RequestContext): Buffer {
  if (mediaTypeOf(ctx.contentType) !== EST_MEDIA.csr) {
    throw new LitebootError('UNSUPPORTED_MEDIA_TYPE', `unsupported media type: the body must be ${EST_MEDIA.csr} (RFC 7030 §4.2.1), not ${ctx.contentType ? `"${ctx.contentType}"` : 'untyped'}`);
  }
  const der = decodeEstBody(ctx.body);
  if (!der) throw new LitebootError('BAD_CSR', 'bad request: the body must be a base64-encoded DER PKCS#10 CSR (RFC 7030 §4.2.1)');
  return der;
}

/** `Content-Transfer-Encoding` for RFC 7030 clients; RFC 8951 tells clients to ignore it. */
function base64Reply(der: Buffer, contentType: string, serial?: bigint): Reply {
  return { status: 200, contentType, headers: { 'Content-Transfer-Encoding': 'base64' }, body: encodeEstBody(der), serial };
}

// Each handler: decode -> (authorization is the route's) -> call the authority -> encode.

export const cacerts: Handler = async (_ctx, d) => base64Reply(certsOnly([d.caDer]), EST_MEDIA.cacerts);

export const simpleEnroll: Handler = async (ctx, d) => {
  const issued = await d.authority.enrol(csrBody(ctx), ctx.caller, 'est');
  return base64Reply(certsOnly([issued.der]), EST_MEDIA.certsOnly, issued.serial);
};

export const simpleReenroll: Handler = async (ctx, d) => {
  const issued = await d.authority.reenrol(csrBody(ctx), ctx.caller);
  return base64Reply(certsOnly([issued.der]), EST_MEDIA.certsOnly, issued.serial);
};

export const csrattrs: Handler = async () => base64Reply(CSR_ATTRS, EST_MEDIA.csrattrs);
