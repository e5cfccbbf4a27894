import type { ErrorCode } from '../errors.js';

export interface StatusRow {
  status: number;
  /**
   * What the client reads. Absent: the error's own message, for codes liteboot throws only with
   * messages it composes itself from checked parts (never a library's or OpenSSL's text).
   */
  message?: string;
  /** Headers sent with the answer (e.g. Retry-After on a 503 the client should retry). */
  headers?: Readonly<Record<string, string>>;
}

const INTERNAL = 'internal server error';
/** A fault of the server: 500 `internal server error` to the client, the detail in the log. */
const FAULT = { status: 500, message: INTERNAL, fault: true } as const;

/**
 * The one table from error codes to HTTP statuses and client-facing messages, one row for every
 * code (the type makes a new code need a row). The authority knows nothing of HTTP.
 */
export const TABLE: Readonly<Record<ErrorCode, StatusRow & { fault?: true }>> = {
  // the command line and files: never a request's doing
  USAGE: FAULT,
  FILE_EXISTS: FAULT,
  FILE_MISSING: FAULT,
  FILE_UNREADABLE: FAULT,
  FILE_INSECURE: FAULT,
  BAD_CONFIG: FAULT,
  BAD_KEY: FAULT,
  KEY_MISMATCH: FAULT,
  KEY_ENCRYPTED: FAULT,
  BAD_PASSWORD: FAULT,
  UNRECOGNISED_INPUT: FAULT,
  // certificates and requests
  BAD_DER: { status: 400 },
  BAD_PEM: { status: 400 },
  BAD_CERT: FAULT, // the server parses only certificates that passed TLS, and its own
  BAD_CSR: { status: 400 },
  BAD_CSR_SIGNATURE: { status: 400 },
  UNSUPPORTED_KEY: { status: 400 },
  BAD_SUBJECT: { status: 400 },
  // requests
  BAD_CONTENT_TYPE: { status: 400, message: 'bad request: Content-Type must be application/cbor or application/json' },
  // EST (RFC 7030 §4.2.3); the API's own endpoints answer a wrong Content-Type with 400 (API.md).
  UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  BAD_BODY: { status: 400, message: 'bad request: POST data did not match specified Content-Type' },
  BAD_UPLOAD: { status: 400 },
  BAD_UUID: { status: 400, message: 'need a valid UUID' },
  BAD_SERIAL: { status: 400, message: 'invalid request' },
  UNKNOWN_SERIAL: { status: 400, message: 'invalid serial number' },
  BAD_REASON: { status: 400 },
  FORBIDDEN: { status: 403 },
  NOT_EXPECTED: { status: 403, message: 'device not expected' },
  // Threat model: the bootstrap key is public; an enrolled id stays with its key.
  DEVICE_BOUND: { status: 409, message: 'device already enrolled with another key' },
  ROUTE_NOT_FOUND: { status: 404, message: 'not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  // The server runs but cannot issue until the operator renews the CA: not a fault, no stack.
  CA_EXPIRED: { status: 503, message: 'service unavailable: the CA certificate has expired, so no certificate can be issued; ask the operator to renew the CA' },
  // the device side (src/client): never thrown by the server
  UNREACHABLE: FAULT,
  TLS_FAILED: FAULT,
  SERVER_REFUSED: FAULT,
  SERVER_FAILED: FAULT,
  BAD_CERT_RETURNED: FAULT,
  // the store: the cause (an errno, a corrupt page) is for the operator's log
  DB_CORRUPT: FAULT,
  DB_LOCKED: FAULT,
  DB_IO: FAULT,
  DB_READONLY: FAULT,
  // RFC 9110 §10.2.3: a 503 may say when to come back. A restarting PostgreSQL takes seconds.
  DB_UNAVAILABLE: { status: 503, message: 'service unavailable: the database cannot be reached; retry later', headers: { 'Retry-After': '2' } },
  INTERNAL: FAULT,
};

/**
 * The rows the API server answers with directly. A code not here is a fault of the server: the
 * API server answers 500 `internal server error` and logs the detail.
 */
export const STATUS: Partial<Record<ErrorCode, StatusRow>> = Object.fromEntries(
  Object.entries(TABLE)
    .filter(([, row]) => !row.fault)
    .map(([code, row]) => [code, { status: row.status, ...(row.message === undefined ? {} : { message: row.message }), ...(row.headers ? { headers: row.headers } : {}) }]),
);
