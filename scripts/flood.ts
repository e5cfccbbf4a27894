/**
 * A flood of TCP connections that never start TLS, from one address (127.0.0.2), against each
 * listener of a real server: how long a well-behaved client on 127.0.0.1 takes to be served
 * (REST API: POST /api/v1/cr with the bootstrap certificate; mTLS listener: a full check) before,
 * during and after the flood, and how many server sockets are left in CLOSE-WAIT once the
 * flood's connections are closed. Prints JSON.
 *
 *   node dist/scripts/flood.js [--connections 2100] [--handshake-timeout 2] [--give-up 60]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { arg, csrPool, makeCa, sleep, startServer, type ServerProcess } from './lib/harness.js';

const CONNECTIONS = arg('--connections', 2100);
const HANDSHAKE_TIMEOUT = arg('--handshake-timeout', 2);
const FROM = '127.0.0.2';
const GIVE_UP_MS = arg('--give-up', 60) * 1000;

/** The server's sockets on `port` (it listens on 127.0.0.1, IPv4) by TCP state, from /proc/net/tcp; `from` limits them to one remote address. */
function states(port: number, from?: string): Record<string, number> {
  const NAMES: Record<string, string> = { '01': 'ESTABLISHED', '03': 'SYN-RECV', '06': 'TIME-WAIT', '08': 'CLOSE-WAIT', '0A': 'LISTEN' };
  const ip = (hex: string) => [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
  const n: Record<string, number> = {};
  for (const line of readFileSync('/proc/net/tcp', 'utf8').trim().split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (parseInt(f[1]!.split(':')[1]!, 16) !== port) continue;
    if (from && ip(f[2]!.split(':')[0]!) !== from) continue;
    const s = NAMES[f[3]!] ?? f[3]!;
    n[s] = (n[s] ?? 0) + 1;
  }
  return n;
}

async function until(cond: () => boolean): Promise<boolean> {
  const end = performance.now() + GIVE_UP_MS;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(20);
  }
  return true;
}

/** Serves one well-behaved client, retrying while it cannot connect as a device would; ms taken and attempts. */
async function serve(dir: string, srv: ServerProcess, which: 'api' | 'mtls', csr: Buffer): Promise<{ ms: number; attempts: number }> {
  const f = (n: string) => readFileSync(join(dir, 'certs', n));
  const tls = { ca: f('CA.crt'), cert: f('BOOTSTRAP.crt'), key: f('BOOTSTRAP.key'), servername: 'localhost', host: '127.0.0.1' };
  const body = Buffer.concat([Buffer.from([0x81, 0x59, csr.length >> 8, csr.length & 0xff]), csr]);
  const started = performance.now();
  for (let attempts = 1; ; attempts++) {
    const ok = await new Promise<boolean>((resolve) => {
      if (which === 'api') {
        const req = request({ ...tls, port: srv.port, agent: false, method: 'POST', path: '/api/v1/cr', headers: { 'Content-Type': 'application/cbor', Connection: 'close' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200));
          res.on('error', () => resolve(false));
        });
        req.on('error', () => resolve(false));
        req.end(body);
      } else {
        const c = tlsConnect({ ...tls, port: srv.mport }, () => {
          c.resume();
          c.on('close', () => resolve(c.authorized));
        });
        c.on('error', () => resolve(false));
      }
    });
    if (ok) return { ms: Math.round(performance.now() - started), attempts };
    if (performance.now() - started > GIVE_UP_MS) throw new Error(`${which}: not served after ${attempts} attempts`);
  }
}

async function floodOne(dir: string, srv: ServerProcess, which: 'api' | 'mtls', csrs: Buffer[]) {
  const port = which === 'api' ? srv.port : srv.mport;
  const before = await serve(dir, srv, which, csrs.pop()!);
  const started = performance.now();
  const sockets: Socket[] = [];
  let closedEarly = 0;
  await new Promise<void>((resolve) => {
    let settled = 0;
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = netConnect({ host: '127.0.0.1', port, localAddress: FROM });
      let done = false;
      const settle = () => {
        if (done) return;
        done = true;
        if (++settled === CONNECTIONS) resolve();
      };
      s.on('error', () => {});
      s.resume();
      s.on('connect', settle);
      s.on('close', () => {
        closedEarly++;
        settle();
      });
      sockets.push(s);
    }
  });
  const openedMs = Math.round(performance.now() - started);
  const during = await serve(dir, srv, which, csrs.pop()!).catch((e: Error) => ({ ms: null, attempts: e.message }));
  await until(() => !states(port, FROM)['SYN-RECV']);
  const held = states(port, FROM).ESTABLISHED ?? 0;
  const refused = closedEarly;
  // Hold them until the server has let go of every one of them (handshake_timeout).
  const released = await until(() => !states(port, FROM).ESTABLISHED);
  const releasedMs = Math.round(performance.now() - started);
  for (const s of sockets) s.destroy();
  const closeWaitAtClose = states(port)['CLOSE-WAIT'] ?? 0;
  await sleep(1000);
  const closeWaitAfter = states(port)['CLOSE-WAIT'] ?? 0;
  const after = await serve(dir, srv, which, csrs.pop()!).catch((e: Error) => ({ ms: null, attempts: e.message }));
  return {
    served_before_ms: before.ms,
    flood_opened_ms: openedMs,
    served_during_flood_ms: during.ms,
    attempts_during_flood: during.attempts,
    refused_at_once: refused,
    held_by_server: held,
    // The rest never reached the process: dropped from the full listen queue, open only on the client's side.
    not_accepted: CONNECTIONS - refused - held,
    server_released_all: released,
    server_released_after_ms: releasedMs,
    close_wait_when_closed: closeWaitAtClose,
    close_wait_1s_after_close: closeWaitAfter,
    served_after_ms: after.ms,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'liteboot-flood-'));
let failed = false;
try {
  await makeCa(dir);
  writeFileSync(join(dir, '.liteboot.toml'), `[server]\nhandshake_timeout = ${HANDSHAKE_TIMEOUT}\n`);
  const srv = await startServer(dir);
  const csrs = await csrPool(8, Math.random);
  const api = await floodOne(dir, srv, 'api', csrs);
  const mtls = await floodOne(dir, srv, 'mtls', csrs);
  const perAddress = /refusing connections from \S+: it holds (\d+)/.exec(srv.stderr())?.[1];
  console.log(JSON.stringify({ connections: CONNECTIONS, from: FROM, handshake_timeout_s: HANDSHAKE_TIMEOUT, max_connections_per_address: perAddress ? Number(perAddress) : null, api, mtls }, null, 2));
  for (const r of [api, mtls]) if (r.close_wait_1s_after_close > 0 || !r.server_released_all || r.served_during_flood_ms === null || r.served_after_ms === null) failed = true;
  srv.child.kill('SIGTERM');
  if ((await srv.exited) !== 0) failed = true;
} catch (e) {
  console.log(JSON.stringify({ error: (e as Error).message }));
  failed = true;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
