/**
 * A real relying party: Debian's Mosquitto broker with `require_certificate true` and liteboot's
 * `crl_file` as its `crlfile` accepts a device certificate, and refuses it once revoked.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { toPem } from '../../src/asn1/pem.js';
import { bodyFile, cborCsrBody, curl, freePort, identity, newDevice, startServer, type TestServer } from '../helpers/server.js';

/** Starts mosquitto and resolves once it listens (its own log line), or rejects with what it said. */
async function startBroker(dir: string, port: number): Promise<{ child: ChildProcess; stop: () => Promise<void> }> {
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${join(dir, 'certs', 'CA.crt')}`,
      `certfile ${join(dir, 'certs', 'SERVER.crt')}`,
      `keyfile ${join(dir, 'certs', 'SERVER.key')}`,
      'require_certificate true',
      'use_identity_as_username true',
      `crlfile ${join(dir, 'crl.pem')}`,
      'log_dest stderr',
      'log_type all',
      // Run as the test's user: the files live in the test's private directory.
      'user root',
      '',
    ].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mosquitto did not start: ${log}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (/Opening ipv4 listen socket on port/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`mosquitto exited: ${log}`));
    });
  });
  return {
    child,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function publish(dir: string, port: number, cert: string, key: string): { code: number; out: string } {
  const r = spawnSync('mosquitto_pub', ['-h', 'localhost', '-p', String(port), '--cafile', join(dir, 'certs', 'CA.crt'), '--cert', cert, '--key', key, '-t', 'liteboot/test', '-m', 'hello', '-d'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

describe('Mosquitto with liteboot\'s crl_file', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ toml: 'crl_file = "crl.pem"' });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('accepts a device certificate, and refuses it after krr once the broker reloads the CRL', async () => {
    const dev = await newDevice(s.dir);
    const r = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', ['-H', 'Content-Type: application/cbor', '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]);
    assert.equal(r.status, 200);
    const certFile = join(s.dir, 'dev.crt');
    writeFileSync(certFile, toPem('CERTIFICATE', r.body.subarray(7)));
    const serial = BigInt('0x' + spawnSync('openssl', ['x509', '-in', certFile, '-noout', '-serial'], { encoding: 'utf8' }).stdout.trim().split('=')[1]);
    const other = await newDevice(s.dir);
    const r2 = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', ['-H', 'Content-Type: application/cbor', '--data-binary', `@${bodyFile(s.dir, cborCsrBody(other.csr))}`]);
    const otherFile = join(s.dir, 'other.crt');
    writeFileSync(otherFile, toPem('CERTIFICATE', r2.body.subarray(7)));

    const port = await freePort();
    let broker = await startBroker(s.dir, port);
    try {
      const ok = publish(s.dir, port, certFile, dev.keyFile);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /received CONNACK \(0\)/);

      const k = curl(s, identity(s.dir, 'OPERATOR-alice'), '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${serial},"Reason":1}`]);
      assert.equal(k.status, 200);
      await broker.stop();
      broker = await startBroker(s.dir, port);

      const refused = publish(s.dir, port, certFile, dev.keyFile);
      assert.notEqual(refused.code, 0, refused.out);
      assert.doesNotMatch(refused.out, /received CONNACK \(0\)/);
      // Another device is unaffected.
      const fine = publish(s.dir, port, otherFile, other.keyFile);
      assert.equal(fine.code, 0, fine.out);
    } finally {
      await broker.stop();
    }
  });
});
