/**
 * Every failure liteboot reports on purpose is a LitebootError with a stable code. The code is
 * what callers branch on (the server maps it to an HTTP status in one table, the CLI to an exit
 * status); the message is for a person and says what to do.
 */
export type ErrorCode =
  // user input on the command line or in files
  | 'USAGE'
  | 'FILE_EXISTS'
  | 'FILE_MISSING'
  | 'FILE_UNREADABLE'
  | 'FILE_INSECURE'
  | 'BAD_CONFIG'
  | 'BAD_KEY'
  | 'KEY_MISMATCH'
  | 'KEY_ENCRYPTED'
  | 'BAD_PASSWORD'
  | 'UNRECOGNISED_INPUT'
  // certificates and requests
  | 'BAD_DER'
  | 'BAD_PEM'
  | 'BAD_CERT'
  | 'BAD_CSR'
  | 'BAD_CSR_SIGNATURE'
  | 'UNSUPPORTED_KEY'
  | 'BAD_SUBJECT'
  // requests (the server maps these to HTTP statuses in src/server/status.ts)
  | 'BAD_CONTENT_TYPE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BAD_BODY'
  | 'BAD_UPLOAD'
  | 'BAD_UUID'
  | 'BAD_SERIAL'
  | 'BAD_REASON'
  | 'UNKNOWN_SERIAL'
  | 'FORBIDDEN'
  | 'DEVICE_BOUND'
  | 'NOT_EXPECTED'
  | 'ROUTE_NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'BODY_TOO_LARGE'
  | 'CA_EXPIRED'
  // the device side (src/client)
  | 'UNREACHABLE'
  | 'TLS_FAILED'
  | 'SERVER_REFUSED'
  | 'SERVER_FAILED'
  | 'BAD_CERT_RETURNED'
  // the store
  | 'DB_CORRUPT'
  | 'DB_LOCKED'
  | 'DB_IO'
  | 'DB_READONLY'
  /** The database cannot be reached now (PostgreSQL down or restarting): retry later. */
  | 'DB_UNAVAILABLE'
  | 'INTERNAL';

export class LitebootError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LitebootError';
    this.code = code;
  }
}

export function isLitebootError(e: unknown): e is LitebootError {
  return e instanceof LitebootError;
}

