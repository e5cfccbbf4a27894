import { get as httpGet } from 'node:http';
import { LitebootError } from '../errors.js';

/** What `liteboot status` reports about a running server, read from its metrics listener. */
export interface ServerStatus {
  address: string;
  healthy: boolean;
  ready: boolean;
  /** /readyz's reason when not ready. */
  notReady?: string;
  issued: { ok: number; refused: number; error: number };
  revoked: number;
  /** Gauges as the server last counted them (at most 15 s old). */
  validCertificates: number;
  expiringWithin30d: number;
  registrations: Record<string, number>;
  tlsRefused: number;
  httpRequests: number;
  startedAt?: string;
}

/** The samples of a text exposition, summed over the series that carry `labels`. */
export function sumOf(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

/** Series values of one label (`state` of liteboot_registrations), for the report. */
function byLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{${label}="([^"]*)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out[m[1]!] = Number(m[2]);
  return out;
}

/** node:http, not fetch: fetch refuses ports on its "bad port" list (6000, 6665-6669, ...), which an operator may choose. */
function get(base: string, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException) =>
      reject(new LitebootError('UNREACHABLE', `no liteboot metrics listener answers at ${base} (${e.code ?? e.message}); is the server running, with metrics_listen set to this address?`, { cause: e }));
    const req = httpGet(`${base}${path}`, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', fail);
  });
}

/** Reads /healthz, /readyz and /metrics from the metrics listener at `address` (`host:port`, `[v6]:port`). */
export async function fetchServerStatus(address: string, timeoutMs = 5000): Promise<ServerStatus> {
  const base = `http://${address}`;
  const [health, ready, metrics] = await Promise.all([get(base, '/healthz', timeoutMs), get(base, '/readyz', timeoutMs), get(base, '/metrics', timeoutMs)]);
  if (metrics.status !== 200 || !metrics.body.includes('liteboot_')) throw new LitebootError('SERVER_FAILED', `${base}/metrics answered ${metrics.status} without liteboot metrics; is this a liteboot metrics listener?`);
  const t = metrics.body;
  const start = sumOf(t, 'process_start_time_seconds');
  return {
    address,
    healthy: health.status === 200,
    ready: ready.status === 200,
    ...(ready.status !== 200 ? { notReady: ready.body.trim().replace(/^not ready: /, '') } : {}),
    issued: { ok: sumOf(t, 'liteboot_certificates_issued_total', { result: 'ok' }), refused: sumOf(t, 'liteboot_certificates_issued_total', { result: 'refused' }), error: sumOf(t, 'liteboot_certificates_issued_total', { result: 'error' }) },
    revoked: sumOf(t, 'liteboot_certificates_revoked_total'),
    validCertificates: sumOf(t, 'liteboot_certificates_valid'),
    expiringWithin30d: sumOf(t, 'liteboot_certificates_expiring', { within: '30d' }),
    registrations: byLabel(t, 'liteboot_registrations', 'state'),
    tlsRefused: sumOf(t, 'liteboot_tls_refused_total'),
    httpRequests: sumOf(t, 'liteboot_http_requests_total'),
    ...(start > 0 ? { startedAt: new Date(start * 1000).toISOString() } : {}),
  };
}
