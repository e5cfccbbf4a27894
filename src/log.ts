/**
 * Logs are for operators: one line per event or request on stderr, never a key or a body.
 * Lines are written in batches (one write per turn of the event loop), so that logging every
 * request costs little at thousands of requests a second.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** One request: method, path, status, duration, and the serial or error code. */
  request(r: { method: string; path: string; status: number; ms: number; who?: string; serial?: bigint; code?: string }): void;
  flush(): void;
}

/**
 * Characters that could start a new line or hide text in a log viewer: controls (C0, DEL, C1,
 * which include CR, LF and NEL), format characters (Cf: zero-width, BIDI overrides), the line
 * and paragraph separators, lone surrogates and non-characters.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Noncharacter_Code_Point}]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Makes any text one safe log line: `\n`, `\r`, `\t`, `\x00` for other controls below U+0100,
 * `\u200b` (or `\u{e0001}`) above. Every message goes through this, so no value taken from a
 * request (a path, a certificate subject, an error message) can forge a line.
 */
export function escapeLogText(text: string): string {
  UNSAFE.lastIndex = 0;
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const cp = c.codePointAt(0)!;
    if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`;
    if (cp < 0x10000) return `\\u${cp.toString(16).padStart(4, '0')}`;
    return `\\u{${cp.toString(16)}}`;
  });
}

export function streamLogger(stream: NodeJS.WritableStream = process.stderr, clock: () => Date = () => new Date()): Logger {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    stream.write(text);
  };
  const line = (l: string) => {
    pending.push(`${clock().toISOString()} ${escapeLogText(l)}\n`);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    info: (m) => line(`INFO ${m}`),
    warn: (m) => line(`WARN ${m}`),
    error: (m) => line(`ERROR ${m}`),
    request: (r) =>
      line(
        `${r.method} ${r.path.length > 200 ? r.path.slice(0, 200) + '...' : r.path} ${r.status} ${r.ms.toFixed(1)}ms` +
          (r.who ? ` by=${r.who}` : '') +
          (r.serial !== undefined ? ` serial=${r.serial}` : '') +
          (r.code ? ` code=${r.code}` : ''),
      ),
    flush,
  };
}

