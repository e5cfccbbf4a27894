/**
 * Devices enrolling under load, for the fault tests: `clients` loops, each POSTing /api/v1/cr
 * (CBOR, the bootstrap credential) one device after another, recording every answer. A device
 * whose connection is reset or refused before an answer may try again with the same CSR (a real
 * device does); an HTTP answer is final for that device and recorded as it came (after a 503 the
 * client paces itself a little, as Retry-After asks, instead of spinning on a server that is down).
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import { Agent, request } from 'node:https';
import { buildCsr } from '../../src/asn1/csr.js';
import { generateKey } from '../../src/asn1/keys.js';
import { dn } from '../../src/asn1/name.js';
import { cborCsrBody, type TlsFiles } from './server.js';

export interface Answer {
  status: number;
  retryAfter?: string;
  ms: number;
  /** When it was sent (performance.now()). */
  at: number;
}

export interface Enrolment {
  id: string;
  /** Attempts that ended without an HTTP answer (reset, refused, closed), and why. */
  resets: string[];
  /** The HTTP answer (at most one: an answer is final). */
  answers: Answer[];
  /** The issued certificate's serial once a 200 came. */
  serial?: bigint;
  der?: Buffer;
  startedAt: number;
}

export interface EnrolOptions {
  port: number;
  tls: TlsFiles;
  clients: number;
  /** One keep-alive connection per client (true), or a new TLS connection per request. */
  keepAlive: boolean;
  /** Longest wait for one answer; past it the attempt counts as a hang. */
  timeoutMs: number;
  /** Attempts per device: a reset or refused connection is retried up to this many times. */
  attempts: number;
}

export interface Enrolling {
  enrolments: Enrolment[];
  /** Attempts that got no answer within timeoutMs. */
  hangs: number;
  /** Resolves once `pred` holds, checked after every answer; rejects after `timeoutMs`. */
  until(pred: () => boolean, timeoutMs: number, what: string, detail?: () => string): Promise<void>;
  /** Lets each client finish the device it is on, then resolves. */
  stop(): Promise<void>;
  acked(): Enrolment[];
}

export function enrol(o: EnrolOptions): Enrolling {
  const enrolments: Enrolment[] = [];
  const watchers = new Set<() => void>();
  const state = { hangs: 0, stopping: false };
  const changed = () => {
    for (const w of [...watchers]) w();
  };
  const attempt = (agent: Agent | undefined, body: Buffer): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer } | { error: string }> =>
    new Promise((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: o.port,
          method: 'POST',
          path: '/api/v1/cr',
          headers: { 'Content-Type': 'application/cbor', 'Content-Length': body.length, ...(agent ? {} : { Connection: 'close' }) },
          ...o.tls,
          agent: agent ?? false,
          timeout: o.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
        },
      );
      req.on('timeout', () => {
        state.hangs++;
        req.destroy(new Error('HANG'));
      });
      req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
      req.end(body);
    });
  const client = async () => {
    const key = generateKey();
    let agent = o.keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : undefined;
    while (!state.stopping) {
      const id = randomUUID();
      const body = cborCsrBody(await buildCsr(dn({ O: 'Test Vendor', OU: 'Signing', CN: id }), key));
      const e: Enrolment = { id, resets: [], answers: [], startedAt: performance.now() };
      enrolments.push(e);
      for (let n = 0; n < o.attempts && e.serial === undefined; n++) {
        const t0 = performance.now();
        const r = await attempt(agent, body);
        if ('error' in r) {
          e.resets.push(r.error);
          if (agent) {
            agent.destroy();
            agent = new Agent({ keepAlive: true, maxSockets: 1 });
          }
        } else {
          const ra = r.headers['retry-after'];
          e.answers.push({ status: r.status, retryAfter: typeof ra === 'string' ? ra : undefined, ms: performance.now() - t0, at: t0 });
          if (r.status === 200) {
            // `a2 01 00 02 59 LLLL <DER>` (API.md)
            e.der = r.body.subarray(7);
            e.serial = BigInt(`0x${new X509Certificate(e.der).serialNumber}`);
          }
          changed();
          if (r.status === 503) await new Promise((w) => setTimeout(w, 50));
          break;
        }
        changed();
      }
    }
    agent?.destroy();
  };
  const running = Promise.all(Array.from({ length: o.clients }, client));
  return {
    enrolments,
    get hangs() {
      return state.hangs;
    },
    until(pred, timeoutMs, what, detail) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pred()) {
            watchers.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`not within ${timeoutMs} ms: ${what}${detail ? `\n${detail()}` : ''}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
    async stop() {
      state.stopping = true;
      await running;
    },
    acked: () => enrolments.filter((e) => e.serial !== undefined),
  };
}
