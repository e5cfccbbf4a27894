import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseCertificate } from '../../src/asn1/certificate.js';
import { toPem } from '../../src/asn1/pem.js';
import { openStore } from '../../src/store/sqljs-store.js';
import type { Registration } from '../../src/store/types.js';
import { liteboot } from '../helpers/run.js';
import { azureToml, CONNECTION, fakeRegistry, KEY } from '../helpers/fake-registry.js';
import { bodyFile, cborCsrBody, curl, identity, newDevice, spawnServer, startServer, type TestServer } from '../helpers/server.js';

async function enrolOne(s: TestServer, id: string = randomUUID()): Promise<{ id: string; der: Buffer }> {
  const dev = await newDevice(s.dir, undefined, id);
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

/**
 * Resolves when the server's stderr matches `re` (a log line is the event); rejects if it exits
 * first, or at once when it logs `failOn` (by default a 401: the fake service found the request
 * malformed or badly signed, so what we wait for would never come).
 */
function waitForLog(s: TestServer, re: RegExp, failOn = /answered HTTP 401/, ms = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (f: () => void) => {
      clearTimeout(timer);
      s.child.stderr!.off('data', check);
      s.child.off('exit', exited);
      f();
    };
    const check = () => {
      if (re.test(s.stderr())) done(resolve);
      else if (failOn.test(s.stderr())) done(() => reject(new Error(`waiting for ${re}, the server logged ${failOn}: ${s.stderr()}`)));
    };
    const exited = () => done(() => reject(new Error(`the server exited before logging ${re}: ${s.stderr()}`)));
    const timer = setTimeout(() => done(() => reject(new Error(`no log line ${re} within ${ms / 1000} s: ${s.stderr()}`))), ms);
    s.child.stderr!.on('data', check);
    s.child.once('exit', exited);
    check();
  });
}

/** Polls a condition with a generous overall deadline, for a state change that logs nothing. */
async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const escape = (id: string) => id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const registeredLine = (id: string) => new RegExp(`cloud: registered ${escape(id)} with `);

describe('azure: the IoT Hub registry REST API', () => {
  test('500, 429 with Retry-After, silence, then 200: registered exactly once, retries spaced as configured', async () => {
    let registry!: Awaited<ReturnType<typeof fakeRegistry>>;
    let s!: TestServer;
    // a second device, registered at once, shows the registrar went on polling after the first was done
    const sentinel = randomUUID();
    try {
    s = await startServer({
      prepare: async (dir) => {
        registry = await fakeRegistry(dir, (n, id) => (id === sentinel ? '200' : ['500', '429:1', 'silent', '200'][n - 1] ?? '200'));
        writeFileSync(join(dir, '.liteboot.toml'), `[server]\nhubname = "test-hub"\n${azureToml(registry.port)}`);
      },
      env: { LITEBOOT_AZURE_CONNECTION_STRING: CONNECTION },
    });
      const a = await enrolOne(s);
      await waitForLog(s, registeredLine(a.id));
      const reg = await registrationOf(s.dir, a.id);
      assert.equal(reg?.status, 'registered');
      assert.equal(reg.attempts, 4);
      const mine = registry.seen.filter((x) => x.deviceId === a.id);
      assert.deepEqual(mine.map((x) => x.problems), [[], [], [], []], 'every request was well-formed and properly signed');
      // Lower bounds only: a slow machine makes gaps longer, never shorter.
      const gaps = mine.slice(1).map((x, i) => x.at - mine[i]!.at);
      assert.ok(gaps[0]! >= 190, `after the 500: retry_min (0.2 s), was ${gaps[0]} ms`);
      assert.ok(gaps[1]! >= 990, `after the 429: its Retry-After (1 s), was ${gaps[1]} ms`);
      assert.ok(gaps[2]! >= 1990 + 790, `after the silence: the timeout (2 s) then 0.2*2^2 s, was ${gaps[2]} ms`);
      // Never registered again: the store will never hand it out as due, and the live registrar,
      // which went on to register another device, did not send it again.
      const ro = await openStore({ path: join(s.dir, 'CADB.db'), readOnly: true });
      try {
        assert.ok(!(await ro.dueRegistrations(Number.MAX_SAFE_INTEGER, 1000)).includes(a.id), 'not due at any time');
      } finally {
        await ro.close();
      }
      await enrolOne(s, sentinel);
      await waitForLog(s, registeredLine(sentinel));
      assert.equal(await s.stop(), 0);
      assert.equal(registry.seen.filter((x) => x.deviceId === a.id).length, 4, 'never registered again');
      assert.deepEqual(registry.seen.filter((x) => x.deviceId === sentinel).map((x) => x.problems), [[]]);
      // The log says what failed and when it retries; the key never appears.
      assert.match(s.stderr(), /cloud: registering .* failed \(attempt 1\): test-hub\.azure-devices\.net answered HTTP 500.*; next try in 0\.2 s/);
      assert.match(s.stderr(), /failed \(attempt 2\): test-hub\.azure-devices\.net answered HTTP 429.*; next try in 1\.0 s/);
      assert.match(s.stderr(), /failed \(attempt 3\): localhost:\d+: no answer within 2 s; next try in 0\.8 s/);
      assert.match(s.stderr(), new RegExp(`cloud: registered ${a.id} with azure \\(test-hub\\.azure-devices\\.net\\) \\(attempt 4\\)`));
      assert.ok(!s.stderr().includes(KEY.toString('base64')));
      // the operator's view
      const list = JSON.parse(liteboot(['device', 'list', '--json'], { cwd: s.dir }).stdout) as { id: string; registration: { status: string; attempts: number } }[];
      const listed = list.find((d) => d.id === a.id);
      assert.equal(listed?.registration.status, 'registered');
      assert.equal(listed.registration.attempts, 4);
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
      await waitForLog(s, new RegExp(`registering ${escape(a.id)} .* failed \\(attempt 1\\)`));
      assert.equal(await s.stop(), 0);
      const pending = await registrationOf(s.dir, a.id);
      assert.equal(pending?.status, 'pending');
      assert.match(pending?.lastError ?? '', /HTTP 503/);
      const before = pending.attempts;
      assert.ok(before >= 1);
      up = true;
      restarted = await spawnServer(s.dir, () => {});
      await waitForLog(restarted, registeredLine(a.id));
      const reg = await registrationOf(s.dir, a.id);
      assert.equal(reg?.status, 'registered');
      assert.equal(reg.attempts, before + 1, 'the count carried across the restart, and the 409 was the last attempt');
      assert.ok(registry.seen.every((x) => x.problems.length === 0), JSON.stringify(registry.seen));
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
      await waitForLog(s, new RegExp(`registering ${escape(a.id)} .* failed \\(attempt 1\\): .*HTTP 400.*; giving up until an operator retries`));
      assert.equal((await registrationOf(s.dir, a.id))?.status, 'failed');
      const listed = liteboot(['device', 'list'], { cwd: s.dir }).stdout;
      assert.match(listed, new RegExp(`${a.id} +1/1 valid +failed \\(test-hub\\.azure-devices\\.net answered HTTP 400`));
      accept = true;
      const r = liteboot(['device', 'register', a.id, '--operator', 'alice', '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /1 device due for registration now/);
      await waitForLog(s, registeredLine(a.id));
      assert.deepEqual(registry.seen.map((x) => x.problems), [[], []], 'one refused, one accepted, nothing more');
      assert.equal((await registrationOf(s.dir, a.id))?.status, 'registered');
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
      const snapshot = () => readdirSync(t.dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => {
        const f = join(e.parentPath, e.name);
        return `${f} ${createHash('sha256').update(readFileSync(f)).digest('hex')}`;
      }).sort();
      const before = snapshot();
      const r = liteboot(['server', 'start', '--hostname', 'localhost', '-p', '0', '-m', '0', '--http-port', '0', '--listen', '127.0.0.1'], { cwd: t.dir });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /connection string needs HostName, SharedAccessKeyName and SharedAccessKey/);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack');
      assert.deepEqual(snapshot(), before, 'no file written or changed');
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
        await waitForLog(s2, registeredLine(a.id));
        assert.match(s2.stderr(), new RegExp(`registering ${escape(a.id)} with azure-cli \\(hub test-hub\\) failed \\(attempt 1\\): az failed: ERROR: temporary failure`));
        assert.equal((await registrationOf(s2.dir, a.id))?.status, 'registered');
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
      await waitForLog(s, registeredLine(a.id));
      assert.equal(got.length, 2);
      assert.ok(got.every((g) => g.ok), 'both requests carry a valid signature');
      assert.equal(got[0]!.body, got[1]!.body, 'the retry sends the same body');
      const body = JSON.parse(got[1]!.body) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['certificate', 'deviceId', 'issuedAt', 'serial']);
      assert.equal(body.deviceId, a.id);
      assert.equal(body.certificate, toPem('CERTIFICATE', a.der));
      assert.equal(body.serial, parseCertificate(a.der).serial.toString(), 'the serial, as a decimal string');
      const ro = await openStore({ path: join(s.dir, 'CADB.db'), readOnly: true });
      try {
        const issued = await ro.findBySerial(parseCertificate(a.der).serial);
        assert.ok(issued?.issuedAt, 'the store knows when it was issued');
        assert.equal(body.issuedAt, issued.issuedAt.toISOString());
      } finally {
        await ro.close();
      }
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
