/**
 * A fake Azure IoT Hub device registry over HTTPS that checks every request as the service would
 * (the SAS signature by openssl), for the cloud registration tests (test/cloud) and the
 * two-server tests (test/server/multi-server).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { runAsync } from './run.js';

export const KEY = randomBytes(32);
export const CONNECTION = `HostName=test-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY.toString('base64')}`;

/**
 * The SAS signature as Azure documents it, computed by openssl rather than by our formula: base64
 * of HMAC-SHA256, keyed with the base64-decoded SharedAccessKey, over
 * `<URL-encoded resource URI>\n<expiry in epoch seconds>`. The resource URI is the hub's host name,
 * which has nothing to URL-encode.
 */
export async function opensslSasSignature(expiry: string): Promise<string> {
  const r = await runAsync('openssl', ['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${KEY.toString('hex')}`], { input: `test-hub.azure-devices.net\n${expiry}` });
  const m = /= ?([0-9a-f]{64})\s*$/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`openssl dgst: ${r.stdout} ${r.stderr}`);
  return Buffer.from(m[1]!, 'hex').toString('base64');
}

export interface Seen {
  at: number;
  deviceId: string;
  problems: string[];
}

/**
 * A fake IoT Hub registry over HTTPS (with the test CA's server certificate) that checks every
 * request the way the service would and answers from a script: a status, `429:<seconds>` with
 * Retry-After, or `silent` (never answers).
 */
export async function fakeRegistry(dir: string, script: (n: number, deviceId: string) => string): Promise<{ port: number; seen: Seen[]; server: Server; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const perDevice = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', async () => {
      const at = Date.now(); // arrival, before the openssl check below takes its time
      const problems: string[] = [];
      const url = new URL(req.url ?? '/', 'https://x');
      const m = /^\/devices\/([^/]+)$/.exec(url.pathname);
      const deviceId = m ? decodeURIComponent(m[1]!) : '';
      if (req.method !== 'PUT') problems.push(`method ${req.method}`);
      if (!m) problems.push(`path ${url.pathname}`);
      if (url.searchParams.get('api-version') !== '2021-04-12') problems.push(`api-version ${url.searchParams.get('api-version')}`);
      const auth = String(req.headers.authorization ?? '');
      const t = /^SharedAccessSignature sr=([^&]+)&sig=([^&]+)&se=(\d+)&skn=([^&]+)$/.exec(auth);
      if (!t) problems.push(`authorization ${auth}`);
      else {
        const [, sr, sig, se, skn] = t;
        // on the wire the signature is URL-encoded (base64 of 32 bytes always ends in "=", so %3D)
        const expect = await opensslSasSignature(se!).then(encodeURIComponent, (e: Error) => e.message);
        if (sig !== expect) problems.push(`signature ${sig}, openssl says ${expect}`);
        if (sr !== 'test-hub.azure-devices.net') problems.push(`sr ${sr}`);
        if (Number(se) * 1000 < Date.now()) problems.push('expired token');
        if (skn !== 'iothubowner') problems.push(`skn ${skn}`);
      }
      try {
        const j = JSON.parse(body) as Record<string, unknown>;
        const want = { deviceId, status: 'enabled', authentication: { type: 'certificateAuthority' }, capabilities: { iotEdge: false } };
        if (JSON.stringify(j) !== JSON.stringify(want)) problems.push(`body ${body}`);
      } catch {
        problems.push(`body ${body}`);
      }
      const n = (perDevice.get(deviceId) ?? 0) + 1;
      perDevice.set(deviceId, n);
      seen.push({ at, deviceId, problems });
      const action = problems.length ? '401' : script(n, deviceId);
      if (action === 'silent') return; // never answers
      if (action.startsWith('429:')) {
        res.writeHead(429, { 'Retry-After': action.slice(4) });
        return res.end('{"Message":"throttled"}');
      }
      res.writeHead(Number(action), { 'Content-Type': 'application/json' });
      res.end(action === '200' ? body : '{"Message":"scripted"}');
    });
  };
  const server = createHttpsServer({ key: readFileSync(join(dir, 'certs/SERVER.key')), cert: readFileSync(join(dir, 'certs/SERVER.crt')) }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    server,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function azureToml(port: number, extra = ''): string {
  return `[cloud]\nprovider = "azure"\nendpoint = "https://localhost:${port}"\nca_file = "certs/CA.crt"\ntimeout = 2\nretry_min = 0.2\nretry_max = 5\n${extra}`;
}

