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
    pending.push(`${clock().toISOString()} ${l}\n`);
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

