import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { loadServerConfig } from '../../src/config.js';
import { sourceOf } from '../../src/server/connection-guard.js';
import { tempDir } from '../helpers/run.js';
import { cborCsrBody, identity, newDevice, startServer, type TestServer } from '../helpers/server.js';

/**
 * Connections that never finish TLS (the bootstrap key is public: anyone reaches both ports).
 * Server `fast` has handshake_timeout = 2 s; server `slow` 60 s, so that what it closes early
 * was closed for another reason than the deadline.
 */
const T = 2;
const CAP = 64;
const FLOOD = 2100;
/** Only to fail rather than hang when something is never closed; not a measure. */
const NEVER = 30_000;

let fast: TestServer;
let slow: TestServer;
before(async () => {
  [fast, slow] = await Promise.all([
    startServer({ toml: `handshake_timeout = ${T}\nmax_connections_per_address = ${CAP}\n` }),
    startServer({ toml: `handshake_timeout = 60\nmax_connections_per_address = ${CAP}\n` }),
  ]);
});
after(async () => {
  for (const s of [fast, slow]) {
    assert.equal(await s.stop(), 0, 'exit 0 after SIGTERM');
    s.cleanup();
  }
});

const ports = (s: TestServer) => [
  { name: 'REST API', port: s.port },
  { name: 'mTLS listener', port: s.mport },
];

/**
 * The server's sockets on `port` (IPv4, it listens on 127.0.0.1) from /proc/net/tcp: state, remote
 * address, and whether a process still holds it (inode 0: closed by its process, left to the kernel).
 */
function serverSockets(port: number): { state: string; remote: string; held: boolean }[] {
  const STATES: Record<string, string> = { '01': 'ESTABLISHED', '03': 'SYN-RECV', '04': 'FIN-WAIT-1', '05': 'FIN-WAIT-2', '06': 'TIME-WAIT', '07': 'CLOSE', '08': 'CLOSE-WAIT', '0A': 'LISTEN' };
  const ip = (hex: string) => [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
  return readFileSync('/proc/net/tcp', 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => parseInt(f[1]!.split(':')[1]!, 16) === port)
    .map((f) => ({ state: STATES[f[3]!] ?? f[3]!, remote: `${ip(f[2]!.split(':')[0]!)}:${parseInt(f[2]!.split(':')[1]!, 16)}`, held: f[9] !== '0' }));
}
const closeWait = (port: number) => serverSockets(port).filter((x) => x.state === 'CLOSE-WAIT');

function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new assert.AssertionError({ message: what() })), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Waits until the kernel's table says so: the server's sockets change state with no event this
 * process can see (a listen queue that overflows drops connections the client thinks are open).
 */
async function until(cond: () => boolean, what: () => string): Promise<void> {
  const end = performance.now() + NEVER;
  while (!cond()) {
    if (performance.now() > end) assert.fail(what());
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The server's sockets on `port` for connections from 127.0.0.2, by state. */
function from2(port: number): Record<string, number> {
  const n: Record<string, number> = {};
  for (const x of serverSockets(port)) if (x.remote.startsWith('127.0.0.2:')) n[x.state] = (n[x.state] ?? 0) + 1;
  return n;
}

interface Conn {
  socket: Socket;
  connectedAt?: number;
  closedAt?: number;
}

/** Opens `n` TCP connections that send nothing. `settled`: each one connected or closed; `closed(k)`: k of them closed. */
function flood(port: number, n: number, localAddress: string) {
  const conns: Conn[] = [];
  let settled = 0;
  let closed = 0;
  const waiting: { k: number; resolve: () => void }[] = [];
  let onSettled!: () => void;
  const allSettled = new Promise<void>((r) => (onSettled = r));
  const wake = () => {
    for (const w of waiting.splice(0)) {
      if (closed >= w.k) w.resolve();
      else waiting.push(w);
    }
  };
  for (let i = 0; i < n; i++) {
    const c: Conn = { socket: netConnect({ host: '127.0.0.1', port, localAddress }) };
    let done = false;
    const settle = () => {
      if (done) return;
      done = true;
      if (++settled === n) onSettled();
    };
    c.socket.on('connect', () => {
      c.connectedAt = performance.now();
      settle();
    });
    c.socket.on('error', () => {});
    c.socket.resume();
    c.socket.on('close', () => {
      c.closedAt = performance.now();
      closed++;
      settle();
      wake();
    });
    conns.push(c);
  }
  return {
    conns,
    settled: allSettled,
    closed: (k: number) => new Promise<void>((resolve) => (closed >= k ? resolve() : waiting.push({ k, resolve }))),
    open: () => conns.filter((c) => c.closedAt === undefined),
  };
}

/** POST /api/v1/cr with the bootstrap certificate, retried as a device would while it cannot connect; resolves with the ms taken. */
async function enrol(s: TestServer): Promise<number> {
  const b = identity(s.dir, 'BOOTSTRAP');
  const body = cborCsrBody((await newDevice(s.dir)).csr);
  const tls = { ca: readFileSync(join(s.dir, 'certs/CA.crt')), cert: readFileSync(b.cert), key: readFileSync(b.key) };
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    const r = await new Promise<{ status: number; body: Buffer } | Error>((resolve) => {
      const req = request({ host: '127.0.0.1', port: s.port, servername: 'localhost', localAddress: '127.0.0.1', ...tls, agent: false, method: 'POST', path: '/api/v1/cr', headers: { 'Content-Type': 'application/cbor', Connection: 'close' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', resolve);
      });
      req.on('error', resolve);
      req.end(body);
    });
    if (!(r instanceof Error)) {
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(r.body.subarray(0, 3).toString('hex'), 'a20100', 'a CBOR /cr answer');
      return performance.now() - started;
    }
    if (performance.now() - started > NEVER) assert.fail(`no enrolment after ${attempt} attempts: ${r.message}`);
  }
}

/** A full mTLS check with the bootstrap certificate, retried while it cannot connect: the server logs it as accepted. */
async function mtlsCheck(s: TestServer): Promise<number> {
  const b = identity(s.dir, 'BOOTSTRAP');
  const tls = { ca: readFileSync(join(s.dir, 'certs/CA.crt')), cert: readFileSync(b.cert), key: readFileSync(b.key) };
  const started = performance.now();
  for (;;) {
    const r = await new Promise<number | Error>((resolve) => {
      const c = tlsConnect({ host: '127.0.0.1', port: s.mport, servername: 'localhost', ...tls }, () => {
        const port = c.localPort!;
        c.resume();
        c.on('close', () => resolve(port));
      });
      c.on('error', resolve);
    });
    if (typeof r === 'number') {
      await logLine(s, new RegExp(`mtls: connection accepted from 127\\.0\\.0\\.1:${r} `));
      return performance.now() - started;
    }
    if (performance.now() - started > NEVER) assert.fail(`no mTLS check: ${r.message}`);
  }
}

function logLine(s: TestServer, re: RegExp): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const check = () => {
        if (re.test(s.stderr())) {
          s.child.stderr!.off('data', check);
          resolve();
        }
      };
      s.child.stderr!.on('data', check);
      check();
    }),
    NEVER,
    () => `no log line ${re}: ${s.stderr().slice(-2000)}`,
  );
}

/** The first bytes a real TLS client sends (its ClientHello), captured from node:tls. */
function clientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    const cap = createNetServer((s) =>
      s.once('data', (d: Buffer) => {
        s.destroy();
        cap.close();
        resolve(d);
      }),
    );
    cap.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({ host: '127.0.0.1', port: (cap.address() as { port: number }).port, rejectUnauthorized: false });
      c.on('error', () => {});
    });
  });
}

describe(`${FLOOD} connections from 127.0.0.2 that never finish the handshake`, () => {
  for (const which of ['REST API', 'mTLS listener']) {
    test(`${which}: a client on 127.0.0.1 is served within handshake_timeout + 1 s; once they close, no CLOSE-WAIT`, async () => {
      const { port } = ports(fast).find((p) => p.name === which)!;
      const f = flood(port, FLOOD, '127.0.0.2');
      await f.settled;
      const ms = which === 'REST API' ? await enrol(fast) : await mtlsCheck(fast);
      assert.ok(ms < (T + 1) * 1000, `served after ${Math.round(ms)} ms during the flood`);
      // The server destroys the ones it let in at handshake_timeout...
      await until(
        () => !from2(port).ESTABLISHED && !from2(port)['SYN-RECV'],
        () => `the server still holds connections from 127.0.0.2: ${JSON.stringify(from2(port))}`,
      );
      // ...and the client closes the rest (refused ones are closed already; some the kernel dropped from a full listen queue).
      for (const c of f.conns) c.socket.destroy();
      await f.closed(FLOOD);
      // A connection dropped from the full listen queue comes back to life with the client's FIN
      // (a SYN cookie): the server accepts it half-closed, and must then close it.
      await until(() => closeWait(port).length === 0, () => `server sockets in CLOSE-WAIT: ${closeWait(port).length}`);
    });

    test(`${which}: one address holds at most max_connections_per_address, the rest are refused; closing them leaves no CLOSE-WAIT`, async () => {
      // handshake_timeout 60 s: nothing here is closed by the deadline.
      const { port } = ports(slow).find((p) => p.name === which)!;
      const f = flood(port, FLOOD, '127.0.0.2');
      await f.settled;
      await until(() => !from2(port)['SYN-RECV'], () => `connections from 127.0.0.2 not yet accepted: ${JSON.stringify(from2(port))}`);
      // One more, refused: the server has dealt with every connection accepted before it.
      const probe = flood(port, 1, '127.0.0.2');
      await within(probe.closed(1), NEVER, () => `a connection beyond the cap was not refused: ${JSON.stringify(from2(port))}`);
      // The kernel may still hold a refused one a moment (accepted, not yet destroyed): wait for the count to settle.
      await until(() => from2(port).ESTABLISHED === CAP, () => `the server holds ${JSON.stringify(from2(port))} connections from 127.0.0.2, not ${CAP}`);
      await logLine(slow, new RegExp(`WARN ${which === 'REST API' ? 'api' : 'mtls'}: refusing connections from 127\\.0\\.0\\.2: it holds ${CAP} \\(max_connections_per_address\\)`));
      // The peer closes first (FIN, no handshake): the server closes its side at once, not at the deadline.
      for (const c of f.open()) c.socket.end();
      await within(f.closed(FLOOD), NEVER, () => `${f.open().length} half-closed connections not closed by the server: ${JSON.stringify(from2(port))}`);
      assert.deepEqual(closeWait(port), [], 'no server socket in CLOSE-WAIT');
      await until(() => !from2(port).ESTABLISHED, () => `the server still holds connections from 127.0.0.2: ${JSON.stringify(from2(port))}`);
      // Their count went back down: 127.0.0.2 gets its connections back, and no more.
      const again = flood(port, CAP, '127.0.0.2');
      await again.settled;
      await until(() => !from2(port)['SYN-RECV'], () => `connections from 127.0.0.2 not yet accepted: ${JSON.stringify(from2(port))}`);
      const probe2 = flood(port, 1, '127.0.0.2');
      await within(probe2.closed(1), NEVER, () => `a connection beyond the cap was not refused: ${JSON.stringify(from2(port))}`);
      // The kernel may still hold a refused one a moment (accepted, not yet destroyed): wait for the count to settle.
      await until(() => from2(port).ESTABLISHED === CAP, () => `the server holds ${JSON.stringify(from2(port))} connections from 127.0.0.2 again, not ${CAP}`);
      for (const c of again.conns) c.socket.destroy();
      await again.closed(CAP);
    });
  }
});

describe('connections that send nothing or never finish are destroyed after handshake_timeout', () => {
  for (const which of ['REST API', 'mTLS listener']) {
    test(`${which}: five silent, one trickling its ClientHello, one stalled after it`, async () => {
      const { port } = ports(fast).find((p) => p.name === which)!;
      const hello = await clientHello();
      const conns: { kind: string; c: Conn; closed: Promise<void> }[] = [];
      const open = (kind: string, onConnect: (s: Socket) => void) => {
        const c: Conn = { socket: netConnect({ host: '127.0.0.1', port }) };
        c.socket.on('error', () => {});
        c.socket.on('connect', () => {
          c.connectedAt = performance.now();
          onConnect(c.socket);
        });
        const closed = new Promise<void>((r) =>
          c.socket.on('close', () => {
            c.closedAt = performance.now();
            r();
          }),
        );
        conns.push({ kind, c, closed });
      };
      for (let i = 0; i < 5; i++) open('silent', () => {});
      open('trickling', (s) => {
        let i = 0;
        const t = setInterval(() => (i < hello.length - 1 ? s.write(hello.subarray(i, ++i)) : clearInterval(t)), 100);
        s.on('close', () => clearInterval(t));
      });
      open('stalled', (s) => s.write(hello));
      // Reading what the server sends, or the FIN it sends at the end is never seen.
      for (const x of conns) x.c.socket.resume();
      await within(Promise.all(conns.map((x) => x.closed)), NEVER, () => `still open: ${conns.filter((x) => x.c.closedAt === undefined).map((x) => x.kind).join(', ')}`);
      for (const { kind, c } of conns) {
        // The deadline runs from the server's accept, which comes after the client's connect.
        assert.ok(c.connectedAt !== undefined && c.closedAt! - c.connectedAt >= T * 1000 - 50, `${kind} closed after ${Math.round(c.closedAt! - c.connectedAt!)} ms, before handshake_timeout`);
      }
      const left = new Set(conns.map((x) => `127.0.0.1:${x.c.socket.localPort}`));
      assert.deepEqual(serverSockets(port).filter((x) => left.has(x.remote) && x.state !== 'TIME-WAIT'), [], 'the server closed its side');
    });
  }

  test('mTLS listener: a checked client that never closes its side is closed after handshake_timeout', async () => {
    const b = identity(fast.dir, 'BOOTSTRAP');
    // allowHalfOpen: the client keeps its side open after the server's FIN, as a hostile one would.
    const raw = netConnect({ host: '127.0.0.1', port: fast.mport, allowHalfOpen: true });
    const c = tlsConnect({ socket: raw, servername: 'localhost', ca: readFileSync(join(fast.dir, 'certs/CA.crt')), cert: readFileSync(b.cert), key: readFileSync(b.key) });
    c.on('error', () => {});
    c.resume();
    await new Promise<void>((resolve, reject) => c.once('secureConnect', resolve).once('error', reject));
    const secured = performance.now();
    const me = `127.0.0.1:${c.localPort}`;
    await within(new Promise((r) => c.once('end', r)), NEVER, () => 'the server did not end the connection');
    // The client hears nothing more (the server sent its FIN already): ask the kernel whether the server still holds the socket.
    await until(
      () => !serverSockets(fast.mport).some((x) => x.remote === me && x.held),
      () => `the server still holds ${me}: ${JSON.stringify(serverSockets(fast.mport).filter((x) => x.remote === me))}`,
    );
    assert.ok(performance.now() - secured >= T * 1000 - 50, `let go ${Math.round(performance.now() - secured)} ms after the handshake`);
    c.destroy();
  });

  test('REST API: a connection that finished its handshake is not cut at handshake_timeout', async () => {
    const b = identity(fast.dir, 'BOOTSTRAP');
    const c = tlsConnect({ host: '127.0.0.1', port: fast.port, servername: 'localhost', ca: readFileSync(join(fast.dir, 'certs/CA.crt')), cert: readFileSync(b.cert), key: readFileSync(b.key) });
    await new Promise<void>((resolve, reject) => c.once('secureConnect', resolve).once('error', reject));
    // A silent connection accepted after it: once that one is gone, the first one's deadline is past too.
    const witness = netConnect({ host: '127.0.0.1', port: fast.port });
    witness.on('error', () => {});
    await within(new Promise((r) => witness.once('close', r)), NEVER, () => 'the silent witness was never closed');
    assert.equal(c.destroyed, false, 'the handshaken connection is still open');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      c.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    c.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    assert.match(await within(answer, NEVER, () => 'no answer'), /^HTTP\/1\.1 \d{3} /);
    c.destroy();
  });
});

describe('[server] max_connections_per_address', () => {
  const load = (toml: string) => {
    const t = tempDir();
    try {
      writeFileSync(join(t.dir, '.liteboot.toml'), `[server]\n${toml}\n`);
      return loadServerConfig({ cwd: t.dir, env: {}, flags: {}, certsDir: join(t.dir, 'certs'), dbPath: join(t.dir, 'CADB.db') }).limits;
    } finally {
      t.cleanup();
    }
  };
  test('defaults to 64, or max_connections when that is lower', () => {
    assert.equal(load('').maxConnectionsPerAddress, 64);
    assert.equal(load('max_connections = 10').maxConnectionsPerAddress, 10);
    assert.equal(load('max_connections_per_address = 500').maxConnectionsPerAddress, 500);
  });
  test('refuses 0, and more than max_connections', () => {
    assert.throws(() => load('max_connections_per_address = 0'), /max_connections_per_address must be a whole number >= 1, not 0/);
    assert.throws(() => load('max_connections = 100\nmax_connections_per_address = 101'), /max_connections_per_address \(101\) must not be greater than max_connections \(100\)/);
  });
});

test('the per-address cap counts an IPv4 address, mapped or not, and an IPv6 /64', () => {
  const cases: [string, string][] = [
    ['127.0.0.2', '127.0.0.2'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:a:b:c:d', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8::1', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
  ];
  for (const [address, source] of cases) assert.equal(sourceOf(address), source, address);
  assert.equal(sourceOf('2001:db8:1:2:ffff::9'), sourceOf('2001:db8:1:2::8'));
  assert.notEqual(sourceOf('2001:db8:1:2::1'), sourceOf('2001:db8:1:3::1'));
});
