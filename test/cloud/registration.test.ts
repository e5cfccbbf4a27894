import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { toPem } from '../../src/asn1/pem.js';
import { openStore } from '../../src/store/sqljs-store.js';
import type { Registration } from '../../src/store/types.js';
import { liteboot } from '../helpers/run.js';
import { bodyFile, cborCsrBody, curl, identity, newDevice, spawnServer, startServer, type TestServer } from '../helpers/server.js';

const KEY = randomBytes(32);
const CONNECTION = `HostName=test-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=${KEY.toString('base64')}`;

interface Seen {
  at: number;
  deviceId: string;
  problems: string[];
}

/**
 * A fake IoT Hub registry over HTTPS (with the test CA's server certificate) that checks every
 * request the way the service would and answers from a script: a status, `429:<seconds>` with
 * Retry-After, or `silent` (never answers).
 */
async function fakeRegistry(dir: string, script: (n: number, deviceId: string) => string): Promise<{ port: number; seen: Seen[]; server: Server; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const perDevice = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
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
        const expect = createHmac('sha256', KEY).update(`${sr}\n${se}`).digest('base64');
        if (decodeURIComponent(sig!) !== expect) problems.push('bad signature');
        if (decodeURIComponent(sr!) !== 'test-hub.azure-devices.net') problems.push(`sr ${sr}`);
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
      seen.push({ at: Date.now(), deviceId, problems });
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

function azureToml(port: number, extra = ''): string {
  return `[cloud]\nprovider = "azure"\nendpoint = "https://localhost:${port}"\nca_file = "certs/CA.crt"\ntimeout = 0.5\nretry_min = 0.2\nretry_max = 5\n${extra}`;
}

async function enrolOne(s: TestServer): Promise<{ id: string; der: Buffer }> {
  const dev = await newDevice(s.dir);
  const r = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', ['-H', 'Content-Type: application/cbor', '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]);
  assert.equal(r.status, 200);
  return { id: dev.id, der: r.body.subarray(7) };
}

async function registrationOf(dir: string, id: string): Promise<Registration | undefined> {
  const store = await openStore({ path: join(dir, 'CADB.db'), readOnly: true });
  try {
    return await store.registration(id);
  } finally {
    await store.close();
  }
}

async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('azure: the IoT Hub registry REST API', () => {
  test('500, 429 with Retry-After, silence, then 200: registered exactly once, retries spaced as configured', async () => {
    let registry!: Awaited<ReturnType<typeof fakeRegistry>>;
    let s!: TestServer;
    try {
    s = await startServer({
      prepare: async (dir) => {
        registry = await fakeRegistry(dir, (n) => ['500', '429:1', 'silent', '200'][n - 1] ?? '200');
        writeFileSync(join(dir, '.liteboot.toml'), `[server]\nhubname = "test-hub"\n${azureToml(registry.port)}`);
      },
      env: { LITEBOOT_AZURE_CONNECTION_STRING: CONNECTION },
    });
      const a = await enrolOne(s);
      const reg = await waitFor('registration', async () => {
        const r = await registrationOf(s.dir, a.id);
        return r?.status === 'registered' ? r : undefined;
      });
      assert.equal(reg.attempts, 4);
      const mine = registry.seen.filter((x) => x.deviceId === a.id);
      assert.deepEqual(mine.map((x) => x.problems), [[], [], [], []], 'every request was well-formed and properly signed');
      const gaps = mine.slice(1).map((x, i) => x.at - mine[i]!.at);
      assert.ok(gaps[0]! >= 190, `after the 500: retry_min (0.2 s), was ${gaps[0]} ms`);
      assert.ok(gaps[1]! >= 990, `after the 429: its Retry-After (1 s), was ${gaps[1]} ms`);
      assert.ok(gaps[2]! >= 490 + 790, `after the silence: the timeout (0.5 s) then 0.2*2^2 s, was ${gaps[2]} ms`);
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal(registry.seen.filter((x) => x.deviceId === a.id).length, 4, 'never registered again');
      // The log says what failed and when it retries; the key never appears.
      assert.match(s.stderr(), /cloud: registering .* failed \(attempt 1\): test-hub\.azure-devices\.net answered HTTP 500.*; next try in 0\.2 s/);
      assert.match(s.stderr(), /cloud: registered .* \(attempt 4\)/);
      assert.ok(!s.stderr().includes(KEY.toString('base64')));
      // the operator's view
      const list = JSON.parse(liteboot(['device', 'list', '--json'], { cwd: s.dir }).stdout) as { id: string; registration: { status: string; attempts: number } }[];
      assert.deepEqual(list.find((d) => d.id === a.id)?.registration.status, 'registered');
    } finally {
      await s?.stop();
      await registry?.close();
      s?.cleanup();
    }
  });

  test('409 (already there) counts as registered; pending devices survive a restart', async () => {
    let up = false;
    let registry!: Awaited<ReturnType<typeof fakeRegistry>>;
    let s!: TestServer;
    let restarted: TestServer | undefined;
    try {
    s = await startServer({
      prepare: async (dir) => {
        registry = await fakeRegistry(dir, () => (up ? '409' : '503'));
        writeFileSync(join(dir, '.liteboot.toml'), azureToml(registry.port, 'connection_string = "' + CONNECTION + '"\n'));
      },
    });
      const a = await enrolOne(s);
      await waitFor('a failed attempt', async () => ((await registrationOf(s.dir, a.id))?.attempts ?? 0) >= 1 || undefined);
      assert.equal(await s.stop(), 0);
      const pending = await registrationOf(s.dir, a.id);
      assert.equal(pending?.status, 'pending');
      assert.match(pending?.lastError ?? '', /HTTP 503/);
      up = true;
      restarted = await spawnServer(s.dir, () => {});
      await waitFor('registration after the restart', async () => ((await registrationOf(s.dir, a.id))?.status === 'registered' ? true : undefined));
    } finally {
      await restarted?.stop();
      await registry?.close();
      s?.cleanup();
    }
  });

  test('a request the service rejects (400) is given up on; an operator can make it try again now', async () => {
    let accept = false;
    let registry!: Awaited<ReturnType<typeof fakeRegistry>>;
    let s!: TestServer;
    try {
    s = await startServer({
      prepare: async (dir) => {
        registry = await fakeRegistry(dir, () => (accept ? '200' : '400'));
        writeFileSync(join(dir, '.liteboot.toml'), azureToml(registry.port, 'connection_string = "' + CONNECTION + '"\n'));
      },
    });
      const a = await enrolOne(s);
      await waitFor('failed', async () => ((await registrationOf(s.dir, a.id))?.status === 'failed' ? true : undefined));
      const listed = liteboot(['device', 'list'], { cwd: s.dir }).stdout;
      assert.match(listed, new RegExp(`${a.id} +1/1 valid +failed \\(test-hub\\.azure-devices\\.net answered HTTP 400`));
      accept = true;
      const r = liteboot(['device', 'register', a.id, '--operator', 'alice', '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /1 device due for registration now/);
      await waitFor('registered', async () => ((await registrationOf(s.dir, a.id))?.status === 'registered' ? true : undefined));
      // bootstrap and device certificates may not ask
      assert.equal(curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/registrations', ['-H', 'Content-Type: application/json', '-d', '{}']).status, 403);
    } finally {
      await s?.stop();
      await registry?.close();
      s?.cleanup();
    }
  });

  test('a bad connection string is refused at start, changing nothing', async () => {
    const { makeCaDir } = await import('../helpers/server.js');
    const { tempDir } = await import('../helpers/run.js');
    const t = tempDir();
    try {
      await makeCaDir(t.dir);
      writeFileSync(join(t.dir, '.liteboot.toml'), '[cloud]\nprovider = "azure"\nconnection_string = "HostName=x"\n');
      const r = liteboot(['server', 'start', '--hostname', 'localhost', '-p', '0', '-m', '0', '--listen', '127.0.0.1'], { cwd: t.dir });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /connection string needs HostName, SharedAccessKeyName and SharedAccessKey/);
    } finally {
      t.cleanup();
    }
  });
});

describe('azure-cli: the original\'s az command', () => {
  test('runs az with exactly the original\'s arguments, once per device', async () => {
    const s = await startServer({
      prepare: (dir) => {
        const bin = join(dir, 'bin');
        mkdirSync(bin);
        // A fake az: records its arguments; fails the first call to show the retry.
        writeFileSync(join(bin, 'az'), `#!/bin/sh\necho "$@" >> "${join(dir, 'az.log')}"\nif [ ! -f "${join(dir, 'az.once')}" ]; then touch "${join(dir, 'az.once')}"; echo "ERROR: temporary failure" >&2; exit 1; fi\nexit 0\n`);
        chmodSync(join(bin, 'az'), 0o755);
        writeFileSync(join(dir, '.liteboot.toml'), '[server]\nhubname = "test-hub"\nresourcegroup = "test-rg"\n[cloud]\nprovider = "azure-cli"\nretry_min = 0.2\n');
      },
      env: { PATH: `${process.env.PATH}` },
    });
    try {
      // the server's PATH must find the fake az
      await s.stop();
      const bin = join(s.dir, 'bin');
      const s2 = await spawnServer(s.dir, () => {}, [], { PATH: `${bin}:${process.env.PATH}` });
      try {
        const a = await enrolOne(s2);
        await waitFor('registered', async () => ((await registrationOf(s2.dir, a.id))?.status === 'registered' ? true : undefined));
        const calls = readFileSync(join(s.dir, 'az.log'), 'utf8').trim().split('\n');
        const want = `iot hub device-identity create --device-id ${a.id} --auth-method x509_ca --resource-group test-rg --hub-name test-hub`;
        assert.deepEqual(calls, [want, want], 'one failed call, one that worked');
      } finally {
        await s2.stop();
      }
    } finally {
      s.cleanup();
    }
  });
});

describe('webhook', () => {
  test('POSTs the device, serial, PEM and time, signed with HMAC-SHA256; any 2xx registers; the secret comes from the environment', async () => {
    const secret = 'webhook-secret-' + randomBytes(8).toString('hex');
    const got: { body: string; ok: boolean }[] = [];
    const receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const ok = req.headers['x-liteboot-signature'] === `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
        got.push({ body, ok });
        res.writeHead(!ok ? 401 : got.length === 1 ? 503 : 204);
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const port = (receiver.address() as { port: number }).port;
    const s = await startServer({
      prepare: (dir) => writeFileSync(join(dir, '.liteboot.toml'), `[cloud]\nprovider = "webhook"\nurl = "http://127.0.0.1:${port}/hook"\nretry_min = 0.2\n`),
      env: { LITEBOOT_WEBHOOK_SECRET: secret },
    });
    try {
      const a = await enrolOne(s);
      await waitFor('registered', async () => ((await registrationOf(s.dir, a.id))?.status === 'registered' ? true : undefined));
      assert.equal(got.length, 2);
      assert.ok(got.every((g) => g.ok), 'both requests carry a valid signature');
      const body = JSON.parse(got[1]!.body) as { deviceId: string; serial: string; certificate: string; issuedAt: string };
      assert.equal(body.deviceId, a.id);
      assert.equal(body.certificate, toPem('CERTIFICATE', a.der));
      assert.match(body.serial, /^\d{19}$/);
      assert.ok(Math.abs(Date.parse(body.issuedAt) - Date.now()) < 60_000);
      assert.ok(!s.stderr().includes(secret), 'the secret never appears in the log');
    } finally {
      await s.stop();
      receiver.close();
      s.cleanup();
    }
  });
});

describe('none', () => {
  test('devices are marked as not registered anywhere', async () => {
    const s = await startServer();
    try {
      const a = await enrolOne(s);
      await waitFor('marked', async () => ((await registrationOf(s.dir, a.id))?.status === 'none' ? true : undefined));
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});
