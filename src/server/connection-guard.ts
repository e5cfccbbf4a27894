import { isIPv4, isIPv6, type Socket } from 'node:net';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server, TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import type { Metrics, TlsRefusal } from '../metrics.js';

export interface GuardOptions {
  /** The listener, as log lines name it ('api', 'mtls'). */
  name: string;
  /** A connection must finish its TLS handshake this long after it is accepted; 0 for plain HTTP (no handshake). */
  handshakeTimeoutMs: number;
  /** Connections one source address may hold open on this listener at once (per process). */
  maxPerAddress: number;
  log: Logger;
  /** Counts per-address refusals (liteboot_tls_refused_total{reason="per_address"}). */
  metrics?: Metrics;
}

/** How long an HTTP connection must have had no request in progress to be closed when its listener is nearly full. */
const IDLE_MS = 250;

/**
 * Keeps connections that never finish TLS from holding a listener's sockets (the bootstrap key is
 * in every device's firmware, so anyone can reach both ports):
 *
 * - A connection that has not finished its handshake `handshakeTimeoutMs` after it was accepted
 *   is destroyed, whatever it sends meanwhile. destroy(), never end(): end() queues a close_notify
 *   behind a handshake that never finishes, so the socket stays open, and half-closed
 *   (CLOSE-WAIT) once the peer gives up, until the process ends.
 * - A source address (an IPv6 /64) holds at most `maxPerAddress` connections; more are destroyed
 *   as they are accepted, before any TLS state is made for them.
 * - Near the listener's `max_connections`, HTTP connections with no request in progress are
 *   closed (sweepIfFull), so that idle ones from many addresses cannot take every slot.
 *
 * Counted per process: several processes serving one port would each allow `maxPerAddress`.
 */
export class ConnectionGuard {
  /** Open connections by source, per process. */
  private readonly open = new Map<string, number>();
  /** Refusals since the source last held no connection, for the log. */
  private readonly refused = new Map<string, number>();
  /** Handshake deadlines by connection (local and remote address and port). */
  private readonly deadlines = new Map<string, NodeJS.Timeout>();
  /** Connections open on the listener, all sources. */
  private total = 0;
  /** While the listener is nearly full: closes idle keep-alive connections (sweepIfFull). */
  private sweeper: NodeJS.Timeout | undefined;
  /** HTTP connections (after the handshake, for TLS) by socket: requests in progress, and since when none is. */
  private readonly http = new Map<Socket, { busy: number; since: number }>();
  /** Node's HTTP and HTTPS servers (both have closeIdleConnections); the mTLS check listener is TLS alone: nothing to sweep. */
  private readonly servesHttp: boolean;

  constructor(private readonly server: Server | HttpServer, private readonly o: GuardOptions) {
    this.servesHttp = typeof (server as Partial<HttpServer>).closeIdleConnections === 'function';
    // tls.Server wraps each accepted socket in TLS in its own 'connection' listener (the event
    // Node documents for injecting connections): run it only for the sockets let in.
    const wrap = server.listeners('connection') as ((raw: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (raw: Socket) => {
      if (this.admit(raw)) for (const l of wrap) l.call(server, raw);
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      const key = connectionKey(socket);
      clearTimeout(this.deadlines.get(key));
      this.deadlines.delete(key);
      if (this.servesHttp) this.track(socket);
    });
    if (this.servesHttp) {
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const c = this.http.get(req.socket);
        if (!c) return;
        c.busy++;
        res.once('close', () => {
          c.busy--;
          c.since = Date.now();
        });
      });
    }
  }


  private track(socket: Socket): void {
    this.http.set(socket, { busy: 0, since: Date.now() });
    socket.once('close', () => this.http.delete(socket));
  }

  private admit(raw: Socket): boolean {
    const source = sourceOf(raw.remoteAddress);
    const n = this.open.get(source) ?? 0;
    if (n >= this.o.maxPerAddress) {
      const r = (this.refused.get(source) ?? 0) + 1;
      this.refused.set(source, r);
      if (r === 1) this.o.log.warn(`${this.o.name}: refusing connections from ${source}: it holds ${n} (max_connections_per_address)`);
      this.o.metrics?.tlsRefused(this.o.name, 'per_address');
      raw.destroy();
      return false;
    }
    this.open.set(source, n + 1);
    this.total++;
    this.sweepIfFull();
    if (this.o.handshakeTimeoutMs === 0) {
      if (this.servesHttp) this.track(raw); // plain HTTP: the raw socket is the request's
      raw.once('close', () => this.closed(source));
      return true;
    }
    const key = connectionKey(raw);
    const peer = `${raw.remoteAddress}:${raw.remotePort}`;
    // Destroyed with an error, so that the listener's tlsClientError says why.
    const deadline = setTimeout(() => raw.destroy(handshakeTimeout(this.o.handshakeTimeoutMs, peer)), this.o.handshakeTimeoutMs);
    deadline.unref();
    this.deadlines.set(key, deadline);
    raw.once('close', () => {
      clearTimeout(deadline);
      if (this.deadlines.get(key) === deadline) this.deadlines.delete(key);
      this.closed(source);
    });
    return true;
  }

  /**
   * Near the listener's `max_connections` (90%), HTTP connections with no request in progress for
   * IDLE_MS (keep-alive ones between requests, and ones that never sent a request) are closed,
   * every 100 ms until fewer than 80% are open: a device connects again when it has something to
   * ask. Without that, idle connections held open from a few dozen addresses
   * (`max_connections_per_address` each) filled every slot, and Node refused every new
   * connection, devices' included. Connections in a request, just made, or still in their
   * handshake (they have `handshake_timeout`) are left alone.
   */
  private sweepIfFull(): void {
    const max = this.server.maxConnections;
    if (!this.servesHttp || this.sweeper || !max || !Number.isFinite(max) || this.total < Math.ceil(max * 0.9)) return;
    this.o.log.warn(`${this.o.name}: ${this.total} of ${max} connections open (max_connections): closing idle keep-alive connections to make room`);
    const sweep = () => {
      if (this.total < Math.ceil(max * 0.8)) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
        this.o.log.info(`${this.o.name}: ${this.total} of ${max} connections open: room again`);
        return;
      }
      const now = Date.now();
      for (const [socket, c] of this.http) if (c.busy === 0 && now - c.since >= IDLE_MS) socket.destroy();
    };
    this.sweeper = setInterval(sweep, 100);
    this.sweeper.unref();
    sweep();
  }

  private closed(source: string): void {
    this.total--;
    const left = (this.open.get(source) ?? 1) - 1;
    if (left > 0) {
      this.open.set(source, left);
      return;
    }
    this.open.delete(source);
    const r = this.refused.get(source);
    if (r) {
      this.refused.delete(source);
      this.o.log.info(`${this.o.name}: ${source} holds no connection now; ${r} refused while it held ${this.o.maxPerAddress}`);
    }
  }
}

/** The metrics reason for a handshake that failed (the guard's deadline, a certificate not accepted, anything else). */
export function handshakeRefusal(err: NodeJS.ErrnoException): TlsRefusal {
  if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  return /CERT|VERIFY|UNKNOWN_CA/i.test(`${err.code ?? ''} ${err.message}`) ? 'verify_failed' : 'handshake_failed';
}

function handshakeTimeout(ms: number, peer: string): Error {
  return Object.assign(new Error(`no TLS handshake within ${ms / 1000} s (handshake_timeout)`), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT', peer });
}

/** A TLS socket reports the same addresses as the raw socket it wraps. */
function connectionKey(s: Socket): string {
  return `${s.localAddress}|${s.localPort}|${s.remoteAddress}|${s.remotePort}`;
}

/**
 * What the per-address cap counts: an IPv4 address (also when mapped into IPv6), or an IPv6 /64:
 * interface identifiers are 64 bits (RFC 4291 §2.5.1), so one host on a /64 can use as many
 * addresses as it likes (RFC 8981 temporary addresses are routine).
 */
export function sourceOf(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address)) return address;
  const bare = address.split('%', 1)[0]!;
  if (!isIPv6(bare)) return address;
  const [head, tail] = bare.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
