/**
 * A listener full of idle keep-alive connections still lets a new one in (connection-guard.ts):
 * an attack held 64 idle connections from each of 32 addresses and locked every device out.
 * Here one address (the cap raised to max_connections) fills the public listener, which anyone
 * may reach without a credential, and the REST API, with the bootstrap key anyone holds; and the
 * metrics listener's 64 slots with connections that send nothing.
 */
import assert from 'node:assert/strict';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { freePort, startServer, type TestServer } from '../helpers/server.js';

const MAX = 40;
let s: TestServer;
before(async () => {
  s = await startServer({ toml: `max_connections = ${MAX}\nmax_connections_per_address = ${MAX}\n`, args: ['--http-port', String(await freePort())] });
});
after(async () => {
  await s.stop();
  s.cleanup();
});

type Get = (agent: HttpAgent | HttpsAgent) => Promise<number>;

/** Fills the listener with MAX keep-alive connections, each answered once and then left idle; then a new connection must be answered. */
async function fillThenAsk(name: string, get: Get, agentOf: () => HttpAgent | HttpsAgent): Promise<void> {
  const from = s.stderr().length;
  const holder = agentOf();
  const held = await Promise.allSettled(Array.from({ length: MAX }, () => get(holder)));
  // Some of the holder's own requests may be refused once the listener is nearly full: that is the point.
  assert.ok(held.some((r) => r.status === 'fulfilled'), 'the holder got answers');
  await s.waitForStderr(new RegExp(`WARN ${name}: \\d+ of ${MAX} connections open \\(max_connections\\): closing idle keep-alive connections to make room`), from);
  // The holder's connections, idle now, are closed (not the ones in a request): room again.
  await s.waitForStderr(new RegExp(`INFO ${name}: \\d+ of ${MAX} connections open: room again`), from);
  const fresh = agentOf();
  try {
    assert.equal(await get(fresh), 200, 'a new connection is answered while the listener is full of idle ones');
  } finally {
    fresh.destroy();
    holder.destroy();
  }
}

test('the public listener full of idle keep-alive connections closes them for a new client', async () => {
  const get: Get = (agent) =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: s.httpPort, path: '/crl', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  await fillThenAsk('public', get, () => new HttpAgent({ keepAlive: true, maxSockets: MAX }));
});

test('the REST API full of idle keep-alive connections (the bootstrap key) closes them for a device', async () => {
  const certs = join(s.dir, 'certs');
  const tls = { ca: readFileSync(join(certs, 'CA.crt')), cert: readFileSync(join(certs, 'BOOTSTRAP.crt')), key: readFileSync(join(certs, 'BOOTSTRAP.key')), servername: 'localhost' };
  const get: Get = (agent) =>
    new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: s.port, path: '/api/v1/ccs', agent, ...tls }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  await fillThenAsk('api', get, () => new HttpsAgent({ keepAlive: true, maxSockets: MAX, ...tls }));
});

test('the metrics listener full of silent connections still answers the health probe', async () => {
  const from = s.stderr().length;
  const silent: Socket[] = [];
  try {
    // 64 connections (the listener's cap) that never send a byte, each accepted before the next.
    for (let i = 0; i < 64; i++) {
      const c = connect(s.metricsPort, '127.0.0.1');
      c.on('error', () => {});
      await new Promise((r) => c.once('connect', r));
      silent.push(c);
    }
    await s.waitForStderr(/WARN metrics: \d+ of 64 connections open \(max_connections\): closing idle keep-alive connections to make room/, from);
    await s.waitForStderr(/INFO metrics: \d+ of 64 connections open: room again/, from);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: s.metricsPort, path: '/healthz', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
  } finally {
    for (const c of silent) c.destroy();
  }
});
