import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { RegistrationError } from './provider.js';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP(S) request with a deadline; network failures become retryable RegistrationErrors. */
export function send(
  url: URL,
  o: { method: string; headers: Record<string, string>; body: Buffer; timeoutMs: number; signal: AbortSignal; ca?: Buffer },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = request(
      url,
      {
        method: o.method,
        headers: { ...o.headers, 'Content-Length': String(o.body.length) },
        signal: o.signal,
        ...(o.ca ? { ca: o.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 64 * 1024) chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (e) => reject(new RegistrationError(`the response from ${url.host} broke off: ${e.message}`)));
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs / 1000} s`)), o.timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new RegistrationError(`${url.host}: ${e.code === 'ABORT_ERR' ? 'stopped' : e.message}`));
    });
    req.end(o.body);
  });
}
