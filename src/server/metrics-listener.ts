import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { listenOn } from './api-server.js';
import { ConnectionGuard } from './connection-guard.js';
import type { PromMetrics } from './prom-metrics.js';

export interface MetricsListenerOptions {
  metrics: PromMetrics;
  /** Why the server cannot take writes now, or undefined when it is ready. */
  notReady: () => Promise<string | undefined>;
  log: Logger;
}

/**
 * The operator's listener (`metrics_listen`, loopback by default): plain HTTP, no credential,
 * for a Prometheus scraper and a load balancer's probes. `GET /metrics` (the text exposition
 * format), `GET /healthz` (the process answers) and `GET /readyz` (it can issue).
 */
export class MetricsListener {
  readonly server: Server;

  constructor(private readonly o: MetricsListenerOptions) {
    // Node checks the header timeout only this often (30 s by default): silent connections would hold slots that long.
    this.server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1000 }, (req, res) => void this.handle(req, res));
    this.server.maxConnections = 64;
    // No per-address cap (a scraper and the probes share one host, often loopback); near full,
    // connections waiting for a request are closed, so 64 silent ones cannot lock the probes out.
    new ConnectionGuard(this.server, { name: 'metrics', handshakeTimeoutMs: 0, maxPerAddress: 64, log: o.log });
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host, 'metrics listener');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const text = 'text/plain; charset=utf-8';
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return send(405, text, 'method not allowed\n');
      }
      switch (path) {
        case '/metrics':
          return send(200, this.o.metrics.registry.contentType, await this.o.metrics.registry.metrics());
        case '/healthz':
          return send(200, text, 'ok\n');
        case '/readyz': {
          const why = await this.o.notReady();
          return why === undefined ? send(200, text, 'ready\n') : send(503, text, `not ready: ${why}\n`);
        }
        default:
          return send(404, text, 'not found\n');
      }
    } catch (e) {
      this.o.log.error(`metrics ${req.method} ${path}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      if (!res.headersSent) send(500, text, 'internal server error\n');
      else res.destroy();
    }
  }

  stop(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    return closed;
  }
}
