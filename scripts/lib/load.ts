/**
 * The benchmarks' load generator: `clients` concurrent HTTPS clients sending requests for
 * `seconds`, keep-alive or a new TLS connection per request, every answer checked.
 */
import { Agent, request } from 'node:https';
import { readdirSync, readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

export interface LoadRequest {
  path: string;
  headers: Record<string, string | number>;
  body: Buffer;
}

export interface LoadOptions {
  port: number;
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
  seconds: number;
  clients: number;
  keepAlive: boolean;
  /** The n-th request (n counts up across all clients). */
  request: (n: number) => LoadRequest;
  /** Whether an answer is a success (checked for every response). */
  check: (status: number, headers: Record<string, string | string[] | undefined>, body: Buffer) => boolean;
}

export interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
  latencies: number[];
}

export async function load(o: LoadOptions): Promise<LoadResult> {
  // One secure context for every connection: building one per connection would dominate the client's cost.
  const tls = { secureContext: createSecureContext(o.tls) };
  const end = performance.now() + o.seconds * 1000;
  let next = 0;
  const r: LoadResult = { ok: 0, errors: 0, seconds: o.seconds, latencies: [] };
  const client = async () => {
    const agent = o.keepAlive ? new Agent({ keepAlive: true, maxSockets: 1, ...tls }) : undefined;
    while (performance.now() < end) {
      const { path, headers, body } = o.request(next++);
      const t0 = performance.now();
      try {
        const { status, head, data } = await new Promise<{ status: number; head: Record<string, string | string[] | undefined>; data: Buffer }>((resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              servername: 'localhost',
              port: o.port,
              path,
              method: 'POST',
              headers: { ...headers, 'Content-Length': body.length, ...(o.keepAlive ? {} : { Connection: 'close' }) },
              ...(agent ? { agent } : { agent: false, ...tls }),
            },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, head: res.headers, data: Buffer.concat(chunks) }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end(body);
        });
        if (o.check(status, head, data)) {
          r.ok++;
          r.latencies.push(performance.now() - t0);
        } else {
          r.errors++;
        }
      } catch {
        r.errors++;
      }
    }
    agent?.destroy();
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: o.clients }, client));
  r.seconds = (performance.now() - t0) / 1000;
  return r;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  return statSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** utime + stime of a /proc stat line, in seconds (clock ticks of 10 ms). */
function statSeconds(stat: string): number {
  const f = stat.split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * CPU seconds of a process's threads so far: its main thread (the event loop) and all the
 * others (the CSR worker, libuv's pool doing the fdatasyncs, V8's GC helpers). A thread that
 * ended between two readings takes its seconds with it: workers here live as long as the server.
 */
export function threadCpuSeconds(pid: number): { loop: number; others: number } {
  let loop = 0;
  let others = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let s: number;
    try {
      s = statSeconds(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
    } catch {
      continue; // ended meanwhile
    }
    if (tid === String(pid)) loop += s;
    else others += s;
  }
  return { loop, others };
}

/** The machine's CPU time so far by kind (the first line of /proc/stat, in clock ticks): what was idle, and what the hypervisor stole. */
export function machineTicks(): { idle: number; steal: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is counted in user already)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { idle: idle + iowait, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/** Successful requests a second and the latency quantiles, in milliseconds. */
export function summarize(r: LoadResult): { rate: number; ok: number; errors: number; p50: number | null; p99: number | null } {
  const l = [...r.latencies].sort((a, b) => a - b);
  const q = (p: number) => (l.length ? Number(l[Math.min(l.length - 1, Math.floor(p * l.length))]!.toFixed(1)) : null);
  return { rate: r.ok / r.seconds, ok: r.ok, errors: r.errors, p50: q(0.5), p99: q(0.99) };
}

/** A /api/v1/cr CBOR body `[h'<CSR DER>']`. */
export function cborCsrBody(der: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x81, 0x59, der.length >> 8, der.length & 0xff]), der]);
}

/** The /cr CBOR answer's framing: 200, `a2 01 00 02 59 LLLL` and a DER SEQUENCE of exactly that length. */
export function isCrCertificate(status: number, data: Buffer): boolean {
  const len = data.length >= 7 ? data.readUInt16BE(5) : -1;
  return status === 200 && data[0] === 0xa2 && data[1] === 1 && data[2] === 0 && data[3] === 2 && data[4] === 0x59 && len === data.length - 7 && data[7] === 0x30;
}
