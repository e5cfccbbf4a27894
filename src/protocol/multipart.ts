/**
 * The one multipart/form-data shape the API takes (RFC 7578): /p10cr's file field. Errors are
 * the original's messages (API.md error table).
 */
export type UploadResult = { file: Buffer } | { error: string };

export const UPLOAD_ERRORS = {
  notMultipart: 'Bad request (no multipart form)',
  missing: 'Missing csrfile file',
  tooLarge: 'File too large',
  notOneBlock: 'Invalid PEM input. Expecting one block',
  notCsr: 'Expecting BEGIN CERTIFICATE REQUEST',
} as const;

function boundaryOf(contentType: string | undefined): string | undefined {
  if (!contentType || contentType.split(';', 1)[0]!.trim().toLowerCase() !== 'multipart/form-data') return undefined;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** The content of the file part named `field` (a part with a filename), at most `maxBytes`. */
export function extractUpload(contentType: string | undefined, body: Buffer, field: string, maxBytes: number): UploadResult {
  const boundary = boundaryOf(contentType);
  if (!boundary) return { error: UPLOAD_ERRORS.notMultipart };
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos < 0) return { error: UPLOAD_ERRORS.notMultipart };
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return { error: UPLOAD_ERRORS.missing }; // closing delimiter
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') return { error: UPLOAD_ERRORS.notMultipart };
    const headersEnd = body.indexOf('\r\n\r\n', pos + 2);
    if (headersEnd < 0) return { error: UPLOAD_ERRORS.notMultipart };
    const headers = body.subarray(pos + 2, headersEnd).toString('utf8');
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headersEnd + 4);
    if (next < 0) return { error: UPLOAD_ERRORS.notMultipart };
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(headers)?.[1] ?? '';
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1];
    const hasFilename = /;\s*filename\*?=/i.test(disposition);
    if (name === field && hasFilename) {
      const file = body.subarray(headersEnd + 4, next);
      if (file.length > maxBytes) return { error: UPLOAD_ERRORS.tooLarge };
      return { file };
    }
    pos = next + 2;
  }
}
