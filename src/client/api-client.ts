import { Agent, request } from 'node:https';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { LitebootError } from '../errors.js';
import { cborMap, encodeCbor } from '../protocol/cbor.js';
import { MEDIA_TYPE, type Format } from '../protocol/format.js';
import { decodeResponse, WireError, type Response, type ResponseKind } from '../protocol/responses.js';

/** How a device reaches liteboot: the server, the CA it trusts, the certificate it presents. */
export interface ClientOptions {
  host: string;
  port: number;
  /** PEM of the CA that signed the server certificate. */
  ca: Buffer;
  /** PEM client certificate and key (bootstrap, device or operator). */
  cert: Buffer;
  key: Buffer;
  /** Keep-alive connections kept open (default 1). */
  connections?: number;
  timeoutMs?: number;
}

/** How new-device enrols: /cr in CBOR or JSON, /p10cr, or EST simpleenroll (RFC 7030). */
export type EnrolFormat = Format | 'p10' | 'est';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Errors a retry may cure: the server is not there yet, went away, or failed (5xx). */
export function isTransient(e: unknown): boolean {
  return e instanceof LitebootError && (e.code === 'UNREACHABLE' || e.code === 'SERVER_FAILED');
}

function connectionError(e: NodeJS.ErrnoException, where: string): LitebootError {
  const code = e.code ?? '';
  if (code === 'ECONNREFUSED') return new LitebootError('UNREACHABLE', `cannot connect to liteboot at ${where}: connection refused (is the server running? is the port right?)`);
  if (code === 'ECONNRESET' || code === 'EPIPE' || e.message === 'socket hang up') return new LitebootError('UNREACHABLE', `the connection to ${where} was closed by the server (${code || e.message})`);
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return new LitebootError('UNREACHABLE', `no answer from liteboot at ${where} in time`);
  if (code === 'ENOTFOUND') return new LitebootError('BAD_CONFIG', `cannot resolve the host name in ${where}; check the hostname`);
  if (code === 'EAI_AGAIN') return new LitebootError('UNREACHABLE', `cannot resolve the host name in ${where} (the name service did not answer)`);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = /cert's list: (.*)$|altnames: (.*)$/.exec(e.message);
    return new LitebootError('TLS_FAILED', `the server at ${where} has a certificate for another name${names ? ` (${(names[1] ?? names[2] ?? '').trim() || 'no names'})` : ''}; use the host name its certificate was made for`);
  }
  if (/CERT|SIGNATURE|ISSUER|SELF_SIGNED/.test(code)) {
    return new LitebootError('TLS_FAILED', `the server at ${where} is not trusted: its certificate does not verify against the CA certificate given (${code}); is it the right CA?`);
  }
  if (/alert|ssl|tls/i.test(e.message)) return new LitebootError('TLS_FAILED', `TLS with ${where} failed: ${e.message.split('\n')[0]} (does the server accept this client certificate?)`);
  return new LitebootError('UNREACHABLE', `cannot talk to liteboot at ${where}: ${e.message}`);
}

/**
 * The device side of the API over node:https, with keep-alive connections. Used by the device
 * commands, the tests and the benchmarks.
 */
export class ApiClient {
  private readonly agent: Agent;
  private readonly where: string;

  constructor(private readonly o: ClientOptions) {
    // RFC 6066 §3: SNI carries host names only, never an address.
    this.agent = new Agent({ keepAlive: true, maxSockets: o.connections ?? 1, ca: o.ca, cert: o.cert, key: o.key, ...(isIP(o.host) ? {} : { servername: o.host }), minVersion: 'TLSv1.2' });
    this.where = `${o.host}:${o.port}`;
  }

  close(): void {
    this.agent.destroy();
  }

  private raw(method: string, path: string, body: Buffer | undefined, headers: Record<string, string>): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.o.host,
          port: this.o.port,
          method,
          path,
          agent: this.agent,
          headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) },
          timeout: this.o.timeoutMs ?? 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (e) => reject(connectionError(e, this.where)));
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.on('error', (e) => reject(connectionError(e, this.where)));
      req.end(body);
    });
  }

  /** One API call in `format`; a non-200 answer becomes an error carrying the server's message. */
  async call(method: string, path: string, format: Format, kind: ResponseKind, body?: Buffer): Promise<Response> {
    const r = await this.raw(method, path, body, { 'Content-Type': MEDIA_TYPE[format] });
    return this.decode(r, format, kind);
  }

  private decode(r: RawResponse, format: Format, kind: ResponseKind): Response {
    const ct = String(r.headers['content-type'] ?? '');
    let decoded: Response | undefined;
    try {
      decoded = decodeResponse(ct.startsWith('application/cbor') ? 'cbor' : ct.startsWith('application/json') ? 'json' : format, r.body, r.status === 200 ? kind : 'error');
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      if (r.status === 200) throw new LitebootError('SERVER_FAILED', `the server's answer is not a ${kind} response: ${e.message}`);
    }
    if (r.status === 200 && decoded) return decoded;
    const message = decoded?.kind === 'error' ? decoded.error : r.body.toString('utf8').slice(0, 200);
    if (r.status >= 500) throw new LitebootError('SERVER_FAILED', `the server failed (HTTP ${r.status}): ${message}`);
    throw new LitebootError('SERVER_REFUSED', `the server refused (HTTP ${r.status}): ${message}`);
  }

  /** cr (CBOR or JSON) or p10cr: the certificate DER. */
  async enrol(csrDer: Buffer, format: EnrolFormat, path = '/api/v1/cr'): Promise<Buffer> {
    if (format === 'est') return this.estEnrol(csrDer);
    if (format === 'p10') {
      // Loaded here: the status commands never need PEM, EST or PKCS#7 (start-up, issue 16).
      const { toPem } = await import('../asn1/pem.js');
      const boundary = `liteboot${randomBytes(12).toString('hex')}`;
      const body = Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="csrfile"; filename="device.csr"\r\nContent-Type: application/octet-stream\r\n\r\n${toPem('CERTIFICATE REQUEST', csrDer)}\r\n--${boundary}--\r\n`,
      );
      const r = await this.raw('POST', '/api/v1/p10cr', body, { 'Content-Type': `multipart/form-data; boundary=${boundary}` });
      if (r.status !== 200) this.decode(r, 'json', 'error');
      const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(r.body.toString('utf8'));
      if (!m) throw new LitebootError('SERVER_FAILED', 'the p10cr answer holds no PEM certificate');
      return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
    }
    const body = format === 'cbor' ? encodeCbor([csrDer]) : Buffer.from(`{"CSR":"${csrDer.toString('base64')}"}`);
    const r = await this.call('POST', path, format, 'csr', body);
    if (r.kind !== 'csr' || r.status !== 0) throw new LitebootError('SERVER_FAILED', 'the server answered with a non-zero status');
    return r.der;
  }

  /**
   * EST simpleenroll (RFC 7030 §4.2): a base64 PKCS#10 in, a base64 certs-only PKCS#7 with the
   * one new certificate out; errors are text/plain.
   */
  private async estEnrol(csrDer: Buffer): Promise<Buffer> {
    const [{ parseCertsOnly }, { decodeEstBody, encodeEstBody, EST_MEDIA, mediaTypeOf }] = await Promise.all([import('../asn1/pkcs7.js'), import('../protocol/est.js')]);
    const r = await this.raw('POST', '/.well-known/est/simpleenroll', encodeEstBody(csrDer), { 'Content-Type': EST_MEDIA.csr });
    const message = () => r.body.toString('utf8').trim().slice(0, 200);
    if (r.status >= 500) throw new LitebootError('SERVER_FAILED', `the server failed (HTTP ${r.status}): ${message()}`);
    if (r.status !== 200) throw new LitebootError('SERVER_REFUSED', `the server refused (HTTP ${r.status}): ${message()}`);
    const type = mediaTypeOf(String(r.headers['content-type'] ?? ''));
    if (type !== EST_MEDIA.cacerts) throw new LitebootError('SERVER_FAILED', `the simpleenroll answer is ${type || 'untyped'}, not ${EST_MEDIA.cacerts}`);
    let certs: Buffer[];
    try {
      const der = decodeEstBody(r.body);
      if (!der) throw new LitebootError('BAD_DER', 'it is not base64');
      certs = parseCertsOnly(der);
    } catch (e) {
      throw new LitebootError('SERVER_FAILED', `the simpleenroll answer is not a base64 certs-only PKCS#7: ${(e as Error).message}`);
    }
    if (certs.length !== 1) throw new LitebootError('SERVER_FAILED', `the simpleenroll answer holds ${certs.length} certificates, not 1`);
    return certs[0]!;
  }

  keyUpdate(csrDer: Buffer, format: Format): Promise<Buffer> {
    return this.enrol(csrDer, format, '/api/v1/kur');
  }

  async certStatus(serial: bigint, format: Format = 'cbor'): Promise<Response> {
    return this.call('GET', `/api/v1/cs/${serial}`, format, 'cs');
  }

  async deviceStatus(uuid: string, format: Format = 'cbor'): Promise<Response> {
    return this.call('GET', `/api/v1/ds/${encodeURIComponent(uuid)}`, format, 'ds');
  }

  async certCopy(serial: bigint, format: Format = 'cbor'): Promise<Response> {
    return this.call('GET', `/api/v1/cc/${serial}`, format, 'cc');
  }

  async cloudSettings(format: Format = 'cbor'): Promise<Response> {
    return this.call('GET', '/api/v1/ccs', format, 'ccs');
  }

  /** Operator only: make one device (or every unregistered one) due for cloud registration now. */
  async registerNow(deviceId?: string): Promise<number> {
    const r = await this.raw('POST', '/api/v1/registrations', Buffer.from(deviceId ? `{"DeviceId":"${deviceId}"}` : '{}'), { 'Content-Type': MEDIA_TYPE.json });
    if (r.status !== 200) this.decode(r, 'json', 'error');
    return Number(/"Devices":(\d+)/.exec(r.body.toString())?.[1] ?? 0);
  }

  /** Operator only: add device ids to the enrolment allowlist, or remove them; returns how many changed. */
  async changeAllowlist(change: 'allow' | 'disallow', ids: readonly string[]): Promise<number> {
    const body = Buffer.from(JSON.stringify({ [change === 'allow' ? 'Allow' : 'Disallow']: ids }));
    const r = await this.raw('POST', '/api/v1/allowlist', body, { 'Content-Type': MEDIA_TYPE.json });
    if (r.status !== 200) this.decode(r, 'json', 'error');
    return Number(/"Changed":(\d+)/.exec(r.body.toString())?.[1] ?? 0);
  }

  async revoke(serial: bigint, reason: number, format: Format = 'cbor'): Promise<void> {
    // Credentials' 127-bit serials do not fit a CBOR integer (the devices' wire has no bignums): JSON carries them exactly.
    if (serial >= 1n << 64n) format = 'json';
    const body = format === 'cbor' ? encodeCbor(cborMap([1, serial], ...(reason ? [[2, reason] as const] : []))) : Buffer.from(`{"Serial":${serial}${reason ? `,"Reason":${reason}` : ''}}`);
    await this.call('POST', '/api/v1/krr', format, 'cs', body);
  }
}
