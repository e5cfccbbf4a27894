/**
 * Logs are for operators: one line per event or request on stderr, never a key or a body.
 * Lines are written in batches (one write per turn of the event loop), so that logging every
 * request costs little at thousands of requests a second.
 */
export interface Logger {
  debug(message: string): void;
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

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LogFormat {
  /** `text`: `<time> LEVEL message`, escaped by escapeLogText; `json`: one JSON object a line. */
  format?: 'text' | 'json';
  /** The least severe level written (default info). */
  level?: LogLevel;
}

/**
 * A JSON line's fields, stable for log pipelines: `time` (ISO 8601), `level`, `msg`; a request
 * adds `method`, `path`, `status`, `ms`, and when known `by`, `serial` (a decimal string) and
 * `code`. JSON.stringify escapes every control character and lone surrogate (ES2019), so no
 * value can end the line; U+2028/2029 and format characters pass as they are (valid JSON).
 */
function jsonLine(time: Date, level: LogLevel, msg: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ time: time.toISOString(), level, msg, ...extra }) + '\n';
}

export function streamLogger(stream: NodeJS.WritableStream = process.stderr, clock: () => Date = () => new Date(), o: LogFormat = {}): Logger {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    stream.write(text);
  };
  const push = (text: string) => {
    pending.push(text);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  const line = (l: string) => push(`${clock().toISOString()} ${escapeLogText(l)}\n`);
  const min = RANK[o.level ?? 'info'];
  const nop = () => {};
  if (o.format === 'json') {
    const at = (level: LogLevel) => (RANK[level] < min ? nop : (m: string) => push(jsonLine(clock(), level, m)));
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      request:
        RANK.info < min
          ? nop
          : (r) =>
              push(
                jsonLine(clock(), 'info', 'request', {
                  method: r.method,
                  path: r.path.length > 200 ? r.path.slice(0, 200) + '...' : r.path,
                  status: r.status,
                  ms: Math.round(r.ms * 10) / 10,
                  ...(r.who ? { by: r.who } : {}),
                  ...(r.serial !== undefined ? { serial: r.serial.toString() } : {}),
                  ...(r.code ? { code: r.code } : {}),
                }),
              ),
      flush,
    };
  }
  const at = (level: LogLevel, tag: string) => (RANK[level] < min ? nop : (m: string) => line(`${tag} ${m}`));
  return {
    debug: at('debug', 'DEBUG'),
    info: at('info', 'INFO'),
    warn: at('warn', 'WARN'),
    error: at('error', 'ERROR'),
    request: RANK.info < min ? nop : (r) =>
      line(
        `${r.method} ${r.path.length > 200 ? r.path.slice(0, 200) + '...' : r.path} ${r.status} ${r.ms.toFixed(1)}ms` +
          (r.who ? ` by=${r.who}` : '') +
          (r.serial !== undefined ? ` serial=${r.serial}` : '') +
          (r.code ? ` code=${r.code}` : ''),
      ),
    flush,
  };
}

