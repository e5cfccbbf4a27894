/**
 * Slow and hostile clients (issue 7): many idle TLS connections, clients that send their
 * headers one byte a second, clients that pipeline requests and never read the answers. The
 * server must keep serving well-behaved clients near full speed, and close what it should.
 *
 *   node dist/scripts/hostile.js [--seconds 6] [--idle 500] [--slow 20] [--unread 10]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { arg, client, csrPool, makeCa, rssOf, sleep, startServer } from './lib/harness.js';

const SECONDS = arg('--seconds', 6);
const IDLE = arg('--idle', 500);
const SLOW = arg('--slow', 20);
const UNREAD = arg('--unread', 10);

const dir = mkdtempSync(join(tmpdir(), 'liteboot-hostile-'));
let failed = false;
try {
  await makeCa(dir);
  // Short timeouts so the run shows them working: headers in 2 s, a request in 4 s, idle 3 s.
  // Every client here is on 127.0.0.1: lift the per-address cap so the timeouts are what is measured.
  writeFileSync(join(dir, '.liteboot.toml'), '[server]\nheaders_timeout = 2\nrequest_timeout = 4\nkeepalive_timeout = 3\nhandshake_timeout = 3\nmax_connections_per_address = 2048\n');
  const srv = await startServer(dir);
  const pool = await csrPool(4000);
  let next = 0;
  const measure = async (label: string) => {
    const end = performance.now() + SECONDS * 1000;
    let ok = 0;
    let errors = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        const c = client(dir, srv.port, 'BOOTSTRAP', 1);
        while (performance.now() < end) {
          try {
            await c.enrol(pool[next++ % pool.length]!, 'cbor');
            ok++;
          } catch {
            errors++;
          }
        }
        c.close();
      }),
    );
    const rate = ok / SECONDS;
    console.log(`${label}: ${rate.toFixed(0)} certificates/s from 4 well-behaved clients, ${errors} errors`);
    return { rate, errors };
  };
  const base = await measure('baseline');

  const tls = { host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: readFileSync(join(dir, 'certs/CA.crt')), cert: readFileSync(join(dir, 'certs/BOOTSTRAP.crt')), key: readFileSync(join(dir, 'certs/BOOTSTRAP.key')) };
  const sockets: { s: TLSSocket; kind: string; closedAt?: number; opened: number }[] = [];
  const open = (kind: string, onSecure: (s: TLSSocket) => void) => {
    const entry = { s: connect(tls, () => onSecure(entry.s)), kind, opened: Date.now() } as { s: TLSSocket; kind: string; closedAt?: number; opened: number };
    entry.s.on('error', () => {});
    entry.s.on('close', () => (entry.closedAt = Date.now()));
    sockets.push(entry);
  };
  // Idle: a finished handshake, then nothing.
  for (let i = 0; i < IDLE; i++) open('idle', (s) => s.resume());
  // Slow: headers one byte a second.
  const slowText = 'GET /api/v1/ccs HTTP/1.1\r\nHost: localhost\r\nX-Slow: ' + 'a'.repeat(100) + '\r\n\r\n';
  for (let i = 0; i < SLOW; i++) {
    open('slow', (s) => {
      s.resume();
      let k = 0;
      const t = setInterval(() => {
        if (s.destroyed || k >= slowText.length) return clearInterval(t);
        s.write(slowText[k++]!);
      }, 1000);
      t.unref();
    });
  }
  // Never reading: many pipelined requests whose answers are never read.
  const unreadText = 'GET /api/v1/cc/1 HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(2000);
  for (let i = 0; i < UNREAD; i++) {
    open('unread', (s) => {
      s.pause(); // never read
      s.write(unreadText);
    });
  }
  await sleep(500);
  const rssBefore = rssOf(srv.child.pid!);
  const under = await measure(`with ${IDLE} idle, ${SLOW} slow and ${UNREAD} never-reading connections`);
  await sleep(4000);
  // The never-reading clients start reading now: a connection the server closed ends at once.
  for (const x of sockets) if (x.kind === 'unread') x.s.resume();
  await sleep(2000);
  const rssAfter = rssOf(srv.child.pid!);
  const byKind = (kind: string) => sockets.filter((x) => x.kind === kind);
  const closed = (kind: string) => byKind(kind).filter((x) => x.closedAt !== undefined).length;
  console.log(`closed by the server within ${Math.round((Date.now() - sockets[0]!.opened) / 1000)} s: idle ${closed('idle')}/${IDLE}, slow ${closed('slow')}/${SLOW}, never-reading ${closed('unread')}/${UNREAD}; RSS ${(rssBefore / 1e6).toFixed(0)} -> ${(rssAfter / 1e6).toFixed(0)} MB`);
  for (const x of sockets) x.s.destroy();
  if (under.rate < base.rate * 0.6) {
    console.log('well-behaved clients slowed down too much');
    failed = true;
  }
  if (base.errors || under.errors) failed = true;
  if (closed('idle') < IDLE || closed('slow') < SLOW || closed('unread') < UNREAD) {
    console.log('some hostile connections were still open');
    failed = true;
  }
  if (srv.child.exitCode !== null) failed = true;
  srv.child.kill('SIGTERM');
  if ((await srv.exited) !== 0) failed = true;
} catch (e) {
  console.log(`hostile failed: ${(e as Error).stack}`);
  failed = true;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(failed ? 'FAILED' : 'passed');
process.exit(failed ? 1 : 0);
