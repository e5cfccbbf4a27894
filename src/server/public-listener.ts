import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ocspErrorResponse } from '../asn1/ocsp.js';
import type { Authority } from '../ca/authority.js';
import type { PublishedCrl } from '../ca/crl-publisher.js';
import type { OcspResponder } from '../ca/ocsp-responder.js';
import type { ServerConfig } from '../config.js';
import { isLitebootError } from '../errors.js';
import type { Logger } from '../log.js';
import { listenOn, readBody } from './api-server.js';
import { ConnectionGuard } from './connection-guard.js';

export interface PublicListenerOptions {
  authority: Authority;
  ocsp: OcspResponder;
  /** The CA certificate, DER, for `GET /ca.crt` (the caIssuers URL). */
  caDer: Buffer;
  log: Logger;
  limits: ServerConfig['limits'];
}

interface Answer {
  status: number;
  type?: string;
  body: Buffer;
  headers?: Record<string, string>;
}

/** OCSP requests are a few hundred bytes; this is room for many CertIDs and a signature. */
const OCSP_BODY_BYTES = 16 * 1024;
const OCSP_RESPONSE = 'application/ocsp-response';

const text = (status: number, message: string): Answer => ({ status, type: 'text/plain; charset=utf-8', body: Buffer.from(message + '\n') });

/**
 * The public listener (`http_port`): plain HTTP, no client certificate, read-only, like every
 * CA's CRL and OCSP endpoints. Relying parties that never hold a liteboot credential (an MQTT
 * broker, openssl) learn about revocations here: `GET /crl` (DER), `/crl.pem`, `/ca.crt`,
 * and OCSP (RFC 6960) as `POST /ocsp` and `GET /ocsp/{base64}`.
 */
export class PublicListener {
  readonly server: Server;

  constructor(private readonly o: PublicListenerOptions) {
    this.server = createServer(
      {
        headersTimeout: o.limits.headersTimeoutMs,
        requestTimeout: o.limits.requestTimeoutMs,
        keepAliveTimeout: o.limits.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, o.limits.headersTimeoutMs),
        maxHeaderSize: o.limits.maxHeaderBytes,
      },
      (req, res) => void this.handle(req, res),
    );
    this.server.maxConnections = o.limits.maxConnections;
    this.server.timeout = o.limits.requestTimeoutMs;
    // Anyone may reach it: one host cannot take every connection (no TLS, so no handshake deadline).
    new ConnectionGuard(this.server, { name: 'public', handshakeTimeoutMs: 0, maxPerAddress: o.limits.maxConnectionsPerAddress, log: o.log });
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable && !socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const path = (req.url ?? '/').split('?', 1)[0]!;
    let a: Answer;
    try {
      a = await this.route(req, path);
    } catch (e) {
      this.o.log.error(`public ${req.method} ${path}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      a = text(500, 'internal server error');
    }
    if (!res.destroyed) {
      const head = req.method === 'HEAD';
      res.writeHead(a.status, { ...(a.type ? { 'Content-Type': a.type } : {}), 'Content-Length': a.body.length, ...a.headers });
      res.end(head ? undefined : a.body);
    }
    this.o.log.request({ method: req.method ?? '?', path: path.length > 80 ? path.slice(0, 80) + '...' : path, status: a.status, ms: performance.now() - started, who: 'public' });
  }

  private async route(req: IncomingMessage, path: string): Promise<Answer> {
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (path === '/crl' || path === '/crl.pem') {
      if (!get) return { ...text(405, 'method not allowed'), headers: { Allow: 'GET, HEAD' } };
      let crl: PublishedCrl;
      try {
        crl = await this.o.authority.crls.crl();
      } catch (e) {
        // The database away: the last CRL built is still signed and good until its nextUpdate.
        const last = this.o.authority.crls.latest;
        if (last) crl = last;
        else if (isLitebootError(e) && e.code === 'DB_UNAVAILABLE') return { ...text(503, 'service unavailable: the database cannot be reached; retry later'), headers: { 'Retry-After': '2' } };
        else throw e;
      }
      const headers = {
        ETag: crl.etag,
        'Last-Modified': crl.thisUpdate.toUTCString(),
        // Relying parties may keep it until the next one is due.
        'Cache-Control': `max-age=${Math.max(0, Math.floor((crl.nextUpdate.getTime() - Date.now()) / 1000))}, must-revalidate`,
      };
      if (notModified(req, crl.etag, crl.thisUpdate)) return { status: 304, body: Buffer.alloc(0), headers };
      return path === '/crl'
        ? { status: 200, type: 'application/pkix-crl', body: crl.der, headers }
        : { status: 200, type: 'application/x-pem-file', body: Buffer.from(crl.pem), headers };
    }
    if (path === '/ca.crt') {
      if (!get) return { ...text(405, 'method not allowed'), headers: { Allow: 'GET, HEAD' } };
      return { status: 200, type: 'application/pkix-cert', body: this.o.caDer };
    }
    if (path === '/ocsp') {
      if (req.method !== 'POST') return { ...text(405, 'method not allowed'), headers: { Allow: 'POST' } };
      if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/ocsp-request') {
        return text(415, 'Content-Type must be application/ocsp-request');
      }
      // Too large, cut short or aborted: malformedRequest, and the connection is not reused.
      const body = await readBody(req, OCSP_BODY_BYTES).catch(() => undefined);
      if (!body) return { status: 200, type: OCSP_RESPONSE, body: ocspErrorResponse('malformedRequest'), headers: { Connection: 'close' } };
      return { status: 200, type: OCSP_RESPONSE, body: await this.ocsp(body, path) };
    }
    if (path.startsWith('/ocsp/')) {
      // RFC 6960 Appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}; the base64 may hold '/'.
      if (!get) return { ...text(405, 'method not allowed'), headers: { Allow: 'GET, HEAD' } };
      const der = base64Request(path.slice('/ocsp/'.length));
      return { status: 200, type: OCSP_RESPONSE, body: der ? await this.ocsp(der, '/ocsp/...') : ocspErrorResponse('malformedRequest'), headers: { 'Cache-Control': 'max-age=0, no-cache' } };
    }
    if (path === '/' && get) return text(200, 'liteboot public listener: /crl, /crl.pem, /ca.crt, /ocsp');
    return text(404, 'not found');
  }

  /** An OCSP answer, whatever happens: an unexpected failure is internalError (logged), never a text 500. */
  private async ocsp(der: Buffer, path: string): Promise<Buffer> {
    try {
      return await this.o.ocsp.respond(der);
    } catch (e) {
      this.o.log.error(`public OCSP ${path}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return ocspErrorResponse('internalError');
    }
  }

  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host, 'public listener');
  }

  stop(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    return closed;
  }
}

/** RFC 9110 §13.1: If-None-Match wins over If-Modified-Since. */
function notModified(req: IncomingMessage, etag: string, lastModified: Date): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return inm.split(',').some((t) => t.trim() === etag || t.trim() === '*' || t.trim() === `W/${etag}`);
  const ims = req.headers['if-modified-since'];
  if (ims !== undefined) {
    const t = Date.parse(ims);
    return !Number.isNaN(t) && Math.floor(lastModified.getTime() / 1000) <= Math.floor(t / 1000);
  }
  return false;
}

/** The base64 of an OCSP GET, URL-decoded; undefined when it is not base64 at all. */
function base64Request(encoded: string): Buffer | undefined {
  let b64: string;
  try {
    b64 = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  if (b64.length === 0 || b64.length > 4 * OCSP_BODY_BYTES || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64');
}
