import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BIN, liteboot, openssl, run, tempDir } from '../helpers/run.js';
import { freePort } from '../helpers/server.js';

/** A server run by the real CLI (`server start` or `up`), once it has said where it serves. */
interface Served {
  child: ChildProcess;
  host: string;
  port: number;
  stdout: string;
  stderr: () => string;
  stop(): Promise<number | null>;
}

const noListeners = ['--http-port', '0', '--metrics-listen', '127.0.0.1:0'];

function serve(dir: string, args: string[], cmd: string[] = [process.execPath, BIN]): Promise<Served> {
  const child = spawn(cmd[0]!, [...cmd.slice(1), ...args], { cwd: dir, env: { ...process.env, CAHOSTNAME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving https:\/\/([^:/]+):(\d+)\/api\/v1 \(/.exec(out);
      if (m) {
        resolve({
          child,
          host: m[1]!,
          port: Number(m[2]),
          stdout: out,
          stderr: () => err,
          stop: () => {
            if (child.exitCode === null) child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    void exited.then((c) => reject(new Error(`exited ${c} before serving:\n${out}\n${err}`)));
  });
}

/** openssl s_client's verdict on the server's certificate for `name` (checked against certs/CA.crt). */
function verifiesFor(dir: string, port: number, name: string): string {
  const r = run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', name, '-verify_hostname', name, '-CAfile', join(dir, 'certs/CA.crt'), '-cert', join(dir, 'certs/BOOTSTRAP.crt'), '-key', join(dir, 'certs/BOOTSTRAP.key')], {
    input: '',
    encoding: 'utf8',
  });
  return /Verification( error)?: .*/.exec(r.stdout + r.stderr)?.[0] ?? `no verdict: ${r.stdout}${r.stderr}`;
}

function subjectAndSans(file: string): string {
  const r = openssl(['x509', '-in', file, '-noout', '-subject', '-ext', 'subjectAltName'], { encoding: 'utf8' });
  return r.stdout.trim();
}

function pubkey(file: string): string {
  const r = openssl(file.endsWith('.key') ? ['pkey', '-in', file, '-pubout'] : ['x509', '-in', file, '-noout', '-pubkey'], { encoding: 'utf8' });
  return r.stdout;
}

describe('dead ends (issue 16 finding 3)', () => {
  test('setup-ca --certs /proc/nope fails at once with one line, and writes nothing', () => {
    const { dir, cleanup } = tempDir();
    try {
      const started = Date.now();
      const r = liteboot(['setup-ca', '--certs', '/proc/nope', 'localhost'], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, 'liteboot: cannot create /proc/nope: the file system refuses to create /proc/nope\n');
      assert.equal(r.stdout, '');
      assert.deepEqual(readdirSync(dir), []);
      // Without the fix the command never ends (spawnSync's 60 s timeout kills it: code -1).
      assert.ok(Date.now() - started < 30_000);
      const f = liteboot(['setup-ca', '--certs', '/etc/passwd/certs', 'localhost'], { cwd: dir });
      assert.equal(f.stderr, 'liteboot: cannot create /etc/passwd/certs: /etc/passwd is not a directory\n');
      assert.equal(f.code, 1);
    } finally {
      cleanup();
    }
  });

  test('--certs DIR puts the database beside DIR (DIR/../CADB.db); a CADB.db in the current directory no longer blocks setup-ca', async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'CADB.db'), 'another CA\'s database');
      const r = liteboot(['setup-ca', '--certs', 'site/certs', 'localhost', '--json'], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { database: string; caSerial: string; serverSerial: string; written: string[]; hostnameRecordedIn: string };
      assert.equal(j.database, join(dir, 'site', 'CADB.db'));
      assert.match(j.caSerial, /^\d+$/);
      assert.match(j.serverSerial, /^\d+$/);
      assert.deepEqual(j.written, ['CA.key', 'CA.crt', 'ca_crt.txt', 'SERVER.key', 'SERVER.crt'].map((f) => join(dir, 'site/certs', f)));
      assert.equal(j.hostnameRecordedIn, join(dir, '.liteboot.toml'));
      assert.equal(liteboot(['setup-bootstrap', '--certs', 'site/certs'], { cwd: dir }).code, 0);
      const s = await serve(dir, ['server', 'start', '--certs', 'site/certs', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...noListeners]);
      try {
        assert.match(s.stdout, new RegExp(`database ${join(dir, 'site', 'CADB.db')}, settings from`));
      } finally {
        assert.equal(await s.stop(), 0, s.stderr());
      }
      assert.ok(existsSync(join(dir, 'site', 'CADB.db')));
      assert.equal(readFileSync(join(dir, 'CADB.db'), 'utf8'), 'another CA\'s database');
      // The credential made now is recorded in the database beside the certificates.
      const op = liteboot(['operator', 'create', 'carol', '--certs', 'site/certs'], { cwd: dir });
      assert.match(op.stdout, new RegExp(`^recorded it in ${join(dir, 'site', 'CADB.db')} \\(serial \\d+\\)$`, 'm'), op.stderr);
      // And setup-ca refuses the database beside the certificates, naming it.
      const again = liteboot(['setup-ca', '--certs', 'site/certs', 'localhost'], { cwd: dir });
      assert.equal(again.code, 1);
      assert.match(again.stderr, new RegExp(`refusing to overwrite .*${join(dir, 'site', 'CADB.db')}.*liteboot setup-server HOSTNAME`));
    } finally {
      cleanup();
    }
  });

  test('after rm certs/SERVER.*, setup-server reissues it from the existing CA; server start then serves (and announces) the new name', async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal(liteboot(['setup-ca', 'localhost'], { cwd: dir }).code, 0);
      assert.equal(liteboot(['setup-bootstrap'], { cwd: dir }).code, 0);
      const caBefore = readFileSync(join(dir, 'certs/CA.crt'), 'utf8');
      const oldServer = readFileSync(join(dir, 'certs/SERVER.crt'), 'utf8');
      // Reissue over existing files: they are kept as backups, and stdout says where.
      const r = liteboot(['setup-server', 'other.example.net', '--san', '127.0.0.1'], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 6, r.stdout);
      const bak = /^kept the old (\S+)\/certs\/SERVER\.key as (\S+\/certs\/SERVER\.key\.\d{8}T\d{6}Z\.bak)$/.exec(lines[0]!);
      assert.ok(bak, lines[0]);
      const crtBak = /^kept the old \S+\/certs\/SERVER\.crt as (\S+\/certs\/SERVER\.crt\.\d{8}T\d{6}Z\.bak)$/.exec(lines[1]!);
      assert.ok(crtBak, lines[1]);
      assert.equal(readFileSync(crtBak[1]!, 'utf8'), oldServer);
      assert.deepEqual(lines.slice(2), [
        `wrote ${join(dir, 'certs/SERVER.key')}`,
        `wrote ${join(dir, 'certs/SERVER.crt')}`,
        `recorded hostname "other.example.net" in ${join(dir, '.liteboot.toml')}`,
        'restart the server to serve it',
      ]);
      assert.equal(readFileSync(join(dir, '.liteboot.toml'), 'utf8'), '[server]\nhostname = "other.example.net"\n');
      assert.equal(readFileSync(join(dir, 'certs/CA.crt'), 'utf8'), caBefore, 'the CA is untouched');
      assert.equal(subjectAndSans(join(dir, 'certs/SERVER.crt')), 'subject=O = "Linaro, LTD", CN = other.example.net\nX509v3 Subject Alternative Name: \n    DNS:other.example.net, IP Address:127.0.0.1');
      assert.equal(openssl(['verify', '-CAfile', join(dir, 'certs/CA.crt'), join(dir, 'certs/SERVER.crt')], { encoding: 'utf8' }).stdout, `${join(dir, 'certs/SERVER.crt')}: OK\n`);

      // The dead end of the issue: the files gone, then a name.
      run('sh', ['-c', 'rm certs/SERVER.*'], { cwd: dir });
      const j = liteboot(['setup-server', 'third.example.net', '--json'], { cwd: dir });
      assert.equal(j.code, 0, j.stderr);
      const made = JSON.parse(j.stdout) as { backups: unknown[]; serial: string; hostname: string; written: string[] };
      assert.deepEqual(made.backups, []);
      assert.equal(made.hostname, 'third.example.net');
      assert.match(made.serial, /^\d+$/);
      const s = await serve(dir, ['server', 'start', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...noListeners]);
      try {
        assert.equal(s.host, 'third.example.net', 'announced from .liteboot.toml, which the certificate names');
        assert.equal(verifiesFor(dir, s.port, 'third.example.net'), 'Verification: OK');
        assert.match(verifiesFor(dir, s.port, 'localhost'), /Verification error: hostname mismatch/);
      } finally {
        assert.equal(await s.stop(), 0, s.stderr());
      }
    } finally {
      cleanup();
    }
  });

  test('operator renew: a new key and certificate, the old one kept and still accepted until revoked; setup-bootstrap --renew keeps the key', async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal(liteboot(['setup-ca', 'localhost'], { cwd: dir }).code, 0);
      assert.equal(liteboot(['setup-bootstrap'], { cwd: dir }).code, 0);
      assert.equal(liteboot(['operator', 'create', 'alice'], { cwd: dir }).code, 0);
      const oldOp = readFileSync(join(dir, 'certs/OPERATOR-alice.crt'), 'utf8');
      const oldSerial = BigInt('0x' + openssl(['x509', '-in', join(dir, 'certs/OPERATOR-alice.crt'), '-noout', '-serial'], { encoding: 'utf8' }).stdout.trim().split('=')[1]).toString();
      const r = liteboot(['operator', 'renew', 'alice', '--json'], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { backups: { file: string; backup: string }[]; serial: string; oldSerial: string; oldStillValid: boolean; kind: string; name: string; recorded: string };
      assert.equal(j.oldSerial, oldSerial);
      assert.notEqual(j.serial, oldSerial);
      assert.equal(j.oldStillValid, true);
      assert.deepEqual([j.kind, j.name], ['operator', 'alice']);
      assert.deepEqual(j.backups.map((b) => b.file), [join(dir, 'certs/OPERATOR-alice.key'), join(dir, 'certs/OPERATOR-alice.crt')]);
      const oldCrtBak = j.backups[1]!.backup;
      assert.equal(readFileSync(oldCrtBak, 'utf8'), oldOp);
      assert.notEqual(pubkey(join(dir, 'certs/OPERATOR-alice.crt')), pubkey(oldCrtBak), 'a new key');
      assert.equal(pubkey(join(dir, 'certs/OPERATOR-alice.key')), pubkey(join(dir, 'certs/OPERATOR-alice.crt')));
      assert.equal(subjectAndSans(join(dir, 'certs/OPERATOR-alice.crt')).split('\n')[0], subjectAndSans(oldCrtBak).split('\n')[0], 'the same subject');

      const bootKey = readFileSync(join(dir, 'certs/bootstrap_key.txt'), 'utf8');
      const oldBoot = readFileSync(join(dir, 'certs/BOOTSTRAP.crt'), 'utf8');
      const b = liteboot(['setup-bootstrap', '--renew'], { cwd: dir });
      assert.equal(b.code, 0, b.stderr);
      assert.match(b.stdout, /^the old certificate \(serial \d+\) stays valid until revoked: liteboot cert revoke \d+ --operator NAME$/m);
      assert.notEqual(readFileSync(join(dir, 'certs/BOOTSTRAP.crt'), 'utf8'), oldBoot);
      assert.equal(pubkey(join(dir, 'certs/BOOTSTRAP.crt')), pubkey(join(dir, 'certs/BOOTSTRAP.key')), 'the same key');
      assert.equal(readFileSync(join(dir, 'certs/bootstrap_key.txt'), 'utf8'), bootKey, 'the firmware key is unchanged');

      // The server accepts the new and the old operator certificate (the old one until revoked).
      const s = await serve(dir, ['server', 'start', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...noListeners]);
      try {
        const ccs = (cert: string, key: string) =>
          run('curl', ['-sS', '--cacert', 'certs/CA.crt', '--cert', cert, '--key', key, '--resolve', `localhost:${s.port}:127.0.0.1`, '-H', 'Content-Type: application/json', `https://localhost:${s.port}/api/v1/ccs`], { cwd: dir, encoding: 'utf8' }).stdout;
        assert.equal(ccs('certs/OPERATOR-alice.crt', 'certs/OPERATOR-alice.key'), '{"Hubname":"","Port":8883}\n');
        assert.equal(ccs(oldCrtBak, j.backups[0]!.backup), '{"Hubname":"","Port":8883}\n');
        assert.equal(ccs('certs/BOOTSTRAP.crt', 'certs/BOOTSTRAP.key'), '{"Hubname":"","Port":8883}\n');
      } finally {
        assert.equal(await s.stop(), 0, s.stderr());
      }
      const none = liteboot(['operator', 'renew', 'nobody'], { cwd: dir });
      assert.equal(none.code, 1);
      assert.equal(none.stderr, `liteboot: the operator credential OPERATOR-nobody.crt not found at ${join(dir, 'certs/OPERATOR-nobody.crt')}; make it with \`liteboot operator create nobody\`\n`);
    } finally {
      cleanup();
    }
  });
});

describe('host names (issue 16 finding 4)', () => {
  test('on a host called "somename", the README flow works as written: up records localhost, device commands and server start use it', async (t) => {
    const probe = run('unshare', ['--uts', 'sh', '-c', 'hostname somename && hostname'], { encoding: 'utf8' });
    if (probe.stdout.trim() !== 'somename') return t.skip(`unshare --uts unavailable: ${probe.stderr.trim()}`);
    const { dir, cleanup } = tempDir();
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // Every liteboot command runs in a UTS namespace of its own whose host name is "somename".
    const wrapper = join(bin, 'liteboot');
    writeFileSync(wrapper, `#!/bin/sh\nexec unshare --uts sh -c 'hostname somename && exec "$0" "$@"' "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(wrapper, 0o755);
    const env = { ...process.env, CAHOSTNAME: '', PATH: `${bin}:${process.env.PATH}` };
    const work = join(dir, 'work');
    mkdirSync(work);
    try {
      const [port, mport] = [await freePort(), await freePort()];
      writeFileSync(join(work, '.liteboot.toml'), `# test ports\n[server]\nport = ${port}\nmport = ${mport}\nhttp_port = 0\nmetrics_listen = "127.0.0.1:0"\n`);
      const up = await serve(work, ['up', '--listen', '127.0.0.1'], [wrapper]);
      try {
        assert.equal(up.host, 'localhost');
        assert.match(up.stdout, new RegExp(`^recorded hostname "localhost" in ${join(work, '.liteboot.toml')}$`, 'm'));
        assert.equal(readFileSync(join(work, '.liteboot.toml'), 'utf8'), `# test ports\n[server]\nhostname = "localhost"\nport = ${port}\nmport = ${mport}\nhttp_port = 0\nmetrics_listen = "127.0.0.1:0"\n`);
        // The README's device commands, as written.
        const nd = run(wrapper, ['new-device', 'localhost'], { cwd: work, env, encoding: 'utf8' });
        assert.equal(nd.code, 0, nd.stderr);
        const [, uuid, serial] = /^enrolled ([0-9a-f-]{36}) \(serial (\d+)\)\n/.exec(nd.stdout)!;
        const nd2 = run(wrapper, ['new-device'], { cwd: work, env, encoding: 'utf8' });
        assert.equal(nd2.code, 0, `new-device without a host name: ${nd2.stderr}`);
        const ds = run(wrapper, ['device', 'status', uuid!], { cwd: work, env, encoding: 'utf8' });
        assert.equal(ds.code, 0, ds.stderr);
        assert.match(ds.stdout, new RegExp(`\\b${serial}\\b`));
        const cs = run(wrapper, ['cert', 'status', serial!], { cwd: work, env, encoding: 'utf8' });
        assert.equal(cs.code, 0, cs.stderr);
        // An explicit name still wins over the file.
        const other = run(wrapper, ['cert', 'status', serial!, '--hostname', '127.0.0.1'], { cwd: work, env, encoding: 'utf8' });
        assert.equal(other.code, 1);
        assert.match(other.stderr, /has a certificate for another name/);
      } finally {
        assert.equal(await up.stop(), 0, up.stderr());
      }
      // Without the file, server start takes the system host name, which the certificate does not
      // name: it warns, and announces a name the certificate is valid for.
      run('rm', [join(work, '.liteboot.toml')]);
      const s = await serve(work, ['server', 'start', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...noListeners], [wrapper]);
      try {
        assert.equal(s.host, 'localhost');
        assert.match(s.stderr(), /does not name the hostname "somename"/);
      } finally {
        assert.equal(await s.stop(), 0, s.stderr());
      }
      // setup-ca records the name it made the certificate for, where server start reads it.
      const fresh = join(dir, 'fresh');
      mkdirSync(fresh);
      const sc = run(wrapper, ['setup-ca'], { cwd: fresh, env, encoding: 'utf8' });
      assert.equal(sc.code, 0, sc.stderr);
      assert.equal(readFileSync(join(fresh, '.liteboot.toml'), 'utf8'), '[server]\nhostname = "somename"\n');
    } finally {
      cleanup();
    }
  });
});

describe('new-device --count interrupted (issue 16 finding 2)', () => {
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    test(`${sig} part-way through a batch of 200: every device the server issued is saved or named in unsaved; exit ${code}`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        assert.equal(liteboot(['setup-ca', 'localhost'], { cwd: dir }).code, 0);
        assert.equal(liteboot(['setup-bootstrap'], { cwd: dir }).code, 0);
        const s = await serve(dir, ['server', 'start', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...noListeners]);
        let result: { code: number | null; stdout: string; stderr: string };
        try {
          const certs = join(dir, 'certs');
          const before = new Set(readdirSync(certs));
          const child = spawn(process.execPath, [BIN, 'new-device', '--port', String(s.port), '--count', '200', '--concurrency', '8', '--json'], { cwd: dir, env: { ...process.env, CAHOSTNAME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
          const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
          // Signal once 20 certificates are on disk (the directory's own events, no sleeping).
          await new Promise<void>((resolve, reject) => {
            const w = watch(certs, () => {
              if (readdirSync(certs).filter((f) => f.endsWith('.crt') && !before.has(f)).length >= 20) {
                w.close();
                resolve();
              }
            });
            void exited.then((c) => {
              w.close();
              reject(new Error(`new-device exited (${c}) before 20 devices: ${err}`));
            });
          });
          child.kill(sig);
          result = { code: await exited, stdout: out, stderr: err };
        } finally {
          assert.equal(await s.stop(), 0, s.stderr());
        }
        assert.equal(result.code, code, result.stderr);
        assert.equal(result.stderr, `liteboot: ${sig}: finishing the requests in flight (${sig} again to quit at once)\n`);
        const j = JSON.parse(result.stdout) as { requested: number; issued: number; saved: number; unsaved: { uuid: string }[]; interrupted: boolean; signal: string; devices: { uuid: string; serial: string; certificate: string; key: string }[]; failures: unknown[] };
        assert.equal(j.interrupted, true);
        assert.equal(j.signal, sig);
        assert.equal(j.requested, 200);
        assert.ok(j.saved >= 20 && j.saved < 200, `saved ${j.saved}`);
        assert.equal(j.issued, j.saved + j.unsaved.length);
        assert.equal(j.devices.length, j.saved);
        assert.deepEqual(j.failures, []);
        // What the server issued, from its audit log (each line is written before the answer).
        const issued = readFileSync(join(dir, 'audit.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { event: string; device?: string; serial?: string })
          .filter((e) => e.event === 'issue');
        const accounted = new Set([...j.devices.map((d) => d.uuid), ...j.unsaved.map((u) => u.uuid)]);
        assert.equal(issued.length, j.issued, 'the summary counts what the server issued');
        for (const e of issued) assert.ok(accounted.has(e.device!), `${e.device} was issued (serial ${e.serial}) but is neither saved nor named in unsaved`);
        for (const d of j.devices) {
          assert.equal(issued.find((e) => e.device === d.uuid)?.serial, d.serial, 'serials as decimal strings');
          assert.equal(pubkey(d.certificate), pubkey(d.key));
        }
        // Keys only of devices that got a certificate: nothing left half-made.
        const keys = readdirSync(join(dir, 'certs')).filter((f) => /^[0-9a-f-]{36}\.key$/.test(f));
        assert.equal(keys.length, j.saved + j.unsaved.length);
      } finally {
        cleanup();
      }
    });
  }
});

describe('cert list (issue 16 finding 7)', () => {
  test('lists the store\'s device certificates with --device, --revoked, --valid and --expiring; --json with string serials', async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal(liteboot(['setup-ca', 'localhost'], { cwd: dir }).code, 0);
      assert.equal(liteboot(['setup-bootstrap'], { cwd: dir }).code, 0);
      assert.equal(liteboot(['operator', 'create', 'alice'], { cwd: dir }).code, 0);
      const s = await serve(dir, ['server', 'start', '--listen', '127.0.0.1', '-p', '0', '-m', '0', ...noListeners]);
      let devices: { uuid: string; serial: string }[];
      try {
        const nd = liteboot(['new-device', '--port', String(s.port), '--count', '3', '--json'], { cwd: dir });
        assert.equal(nd.code, 0, nd.stderr);
        devices = (JSON.parse(nd.stdout) as { devices: { uuid: string; serial: string }[] }).devices;
        const rv = liteboot(['cert', 'revoke', devices[0]!.serial, '--operator', 'alice', '--reason', '1', '--port', String(s.port)], { cwd: dir });
        assert.equal(rv.code, 0, rv.stderr);
        // Beside the running server (read-only).
        const all = liteboot(['cert', 'list', '--json'], { cwd: dir });
        assert.equal(all.code, 0, all.stderr);
        const rows = JSON.parse(all.stdout) as { serial: string; device: string; state: string; revokeReason: string | null; notAfter: string }[];
        assert.deepEqual(
          rows.map((r) => [r.serial, r.device, r.state, r.revokeReason]).sort(),
          devices.map((d, i) => [d.serial, d.uuid, i === 0 ? 'revoked' : 'valid', i === 0 ? 'keyCompromise' : null]).sort(),
        );
        assert.match(all.stdout, new RegExp(`"serial": "${devices[1]!.serial}"`), 'a decimal string, not a number');
      } finally {
        assert.equal(await s.stop(), 0, s.stderr());
      }
      const list = (...args: string[]) => liteboot(['cert', 'list', ...args], { cwd: dir });
      const revoked = list('--revoked');
      assert.equal(revoked.stdout, `${devices[0]!.serial}  ${devices[0]!.uuid}  revoked (keyCompromise)  until ${(JSON.parse(list('--json', '--revoked').stdout) as { notAfter: string }[])[0]!.notAfter}\n1 certificate\n`);
      assert.equal(list('--valid').stdout.split('\n').at(-2), '2 certificates');
      assert.equal(list('--device', devices[2]!.uuid.toUpperCase()).stdout.split('\n').at(-2), '1 certificate');
      assert.equal(list('--expiring', '30d').stdout, '0 certificates\n', 'device certificates last 365 days');
      assert.equal(list('--expiring', '400d').stdout.split('\n').at(-2), '2 certificates', 'the revoked one is not expiring');
      const empty = liteboot(['cert', 'list', '--certs', 'elsewhere/certs'], { cwd: dir });
      assert.deepEqual([empty.code, empty.stderr], [1, `liteboot: no database at ${join(dir, 'elsewhere', 'CADB.db')}: the server makes it when it first starts (or pass --db FILE, --certs DIR)\n`]);
      const bad = list('--expiring', 'soon');
      assert.deepEqual([bad.code, bad.stderr], [2, 'liteboot: --expiring takes a duration such as 30d, 12h or 2w, not "soon"\n']);
    } finally {
      cleanup();
    }
  });
});
