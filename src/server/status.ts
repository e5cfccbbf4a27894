import type { ErrorCode } from '../errors.js';

/**
 * The one table from error codes to HTTP statuses and client-facing messages. The authority
 * knows nothing of HTTP; a code missing here is a fault of the server (500, detail in the log).
 */
export const STATUS: Partial<Record<ErrorCode, { status: number; message?: string }>> = {
  BAD_CONTENT_TYPE: { status: 400, message: 'bad request: Content-Type must be application/cbor or application/json' },
  // EST (RFC 7030 §4.2.3); the API's own endpoints answer a wrong Content-Type with 400 (API.md).
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  BAD_BODY: { status: 400, message: 'bad request: POST data did not match specified Content-Type' },
  BAD_UPLOAD: { status: 400 },
  BAD_UUID: { status: 400, message: 'need a valid UUID' },
  BAD_SERIAL: { status: 400, message: 'invalid request' },
  UNKNOWN_SERIAL: { status: 400, message: 'invalid serial number' },
  BAD_REASON: { status: 400 },
  BAD_CSR: { status: 400 },
  BAD_CSR_SIGNATURE: { status: 400 },
  BAD_DER: { status: 400 },
  UNSUPPORTED_KEY: { status: 400 },
  BAD_SUBJECT: { status: 400 },
  FORBIDDEN: { status: 403 },
  NOT_EXPECTED: { status: 403, message: 'device not expected' },
  // Threat model: the bootstrap key is public; an enrolled id stays with its key.
  DEVICE_BOUND: { status: 409, message: 'device already enrolled with another key' },
  ROUTE_NOT_FOUND: { status: 404, message: 'not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
};
