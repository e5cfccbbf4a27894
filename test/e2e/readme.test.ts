import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BIN, ROOT, tempDir } from '../helpers/run.js';
import { freePort } from '../helpers/server.js';

/** The sh blocks of a README section, in order. */
function shBlocks(readme: string, from: string, to: string): string[] {
  const section = readme.slice(readme.indexOf(from), readme.indexOf(to));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

test('the README\'s API examples work as written against `liteboot up`', async () => {
  const { dir, cleanup } = tempDir('liteboot-readme-');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'liteboot'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(bin, 'liteboot'), 0o755);
  const http = await freePort();
  const child = spawn(process.execPath, [BIN, 'up', '--listen', '127.0.0.1', '-p', '0', '-m', '0', '--http-port', String(http)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const [port, mport] = await new Promise<[number, number]>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /https:\/\/localhost:(\d+)\/api\/v1 \(mTLS check on port (\d+)/.exec(out);
        if (m) resolve([Number(m[1]), Number(m[2])]);
      });
      child.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
    });
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const blocks = shBlocks(readme, '## The REST API', '## Moving from the Go liteboot');
    assert.ok(blocks.length >= 8, `found ${blocks.length} examples`);
    const script = ['set -euo pipefail', ...blocks].join('\n').replaceAll(':1443/', `:${port}/`).replaceAll('localhost:8443', `localhost:${mport}`).replaceAll('localhost:8080/', `localhost:${http}/`);
    const r = spawnSync('bash', ['-c', script], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, timeout: 120_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}\n${err}`);
    assert.match(r.stdout, /USER\.crt: OK/);
    assert.match(r.stdout, /\{"Status":0,"Cert":"[A-Za-z0-9+/=]+"\}/);
    assert.match(r.stdout, /subject=O = Test Vendor, OU = Signing, CN = [0-9a-f-]{36}/);
    assert.match(r.stdout, /\{"Status":1\}\n/);
    assert.match(r.stdout, /00000000: a101 01/);
    assert.match(r.stdout, /\{"Status":1,"Serials":\[\d+\]\}/);
    assert.match(r.stdout, /\{"Hubname":"","Port":8883\}/);
    assert.match(r.stdout, /^OK serial=\d+ subject=CN=[0-9a-f-]{36},OU=Signing,O=Test Vendor$/m, 'the check listener\'s verdict');
    assert.match(r.stdout, /\{"Status":0\}\n/, 'the revocation example shows the revoked certificate');
    assert.match(r.stdout, /est\.crt: OK\n/, 'the EST example enrols');
    assert.match(r.stdout, /USER\.crt: revoked\n/, 'OCSP says it is revoked');
    assert.match(r.stdout, /Serial Number: [0-9A-F]+\n/, 'the CRL lists it');
    assert.match(r.stdout, /certificate revoked[\s\S]*USER\.crt refused\n$/, 'openssl refuses it with the CRL');
  } finally {
    const exited = child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, `exit 0 after SIGTERM\n${err}`);
    cleanup();
  }
});
