import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openssl } from '../helpers/run.js';
import { identity, startServer, type TestServer } from '../helpers/server.js';

/** What the server offers, asked of openssl s_client with the bootstrap credential. */
const TLS12_AEAD = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'];
const TLS13 = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256'];

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(async () => {
  assert.equal(await s.stop(), 0, 'exit 0 after SIGTERM');
  s.cleanup();
});

/** The cipher s_client negotiated, or undefined when the handshake failed. */
function negotiated(port: number, args: string[]): string | undefined {
  const b = identity(s.dir, 'BOOTSTRAP');
  const r = openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-cert', b.cert, '-key', b.key, '-CAfile', join(s.dir, 'certs/CA.crt'), '-verify_return_error', ...args], { input: '' });
  const m = /Cipher is (\S+)/.exec(r.stdout);
  return m && m[1] !== '(NONE)' && r.code === 0 ? m[1] : undefined;
}

/** TLS 1.2 suites of openssl's list (SECLEVEL 0: all it has), with their MAC. */
function tls12Suites(): { name: string; mac: string }[] {
  const r = openssl(['ciphers', '-v', '-tls1_2', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0']);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] !== 'TLSv1.3')
    .map((f) => ({ name: f[0]!, mac: f.find((x) => x.startsWith('Mac='))!.slice(4) }));
}

describe('TLS 1.2 offers AEAD suites only, on both listeners', () => {
  for (const which of ['REST API', 'mTLS listener']) {
    const port = () => (which === 'REST API' ? s.port : s.mport);

    test(`${which}: ECDHE-ECDSA-AES128-GCM-SHA256 (what the devices use) is accepted, ECDHE-ECDSA-AES128-SHA refused`, () => {
      assert.equal(negotiated(port(), ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']), 'ECDHE-ECDSA-AES128-GCM-SHA256');
      assert.equal(negotiated(port(), ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0']), undefined);
    });

    test(`${which}: every ECDHE suite without an AEAD is refused, one by one`, () => {
      const cbc = tls12Suites().filter((c) => c.name.startsWith('ECDHE-') && c.mac !== 'AEAD');
      assert.ok(cbc.some((c) => c.name === 'ECDHE-ECDSA-AES256-SHA') && cbc.length >= 8, `openssl lists ${cbc.map((c) => c.name).join(' ')}`);
      const accepted = cbc.filter((c) => negotiated(port(), ['-tls1_2', '-cipher', `${c.name}@SECLEVEL=0`]) !== undefined);
      assert.deepEqual(accepted, []);
    });

    test(`${which}: exactly ${TLS12_AEAD.join(', ')} in TLS 1.2; the TLS 1.3 suites as before`, () => {
      for (const c of TLS12_AEAD) assert.equal(negotiated(port(), ['-tls1_2', '-cipher', c]), c);
      // Offered everything else openssl has at once: the server finds nothing it takes.
      const others = tls12Suites().filter((c) => !TLS12_AEAD.includes(c.name));
      assert.ok(others.length > 40, `${others.length} other suites`);
      assert.equal(negotiated(port(), ['-tls1_2', '-cipher', `${others.map((c) => c.name).join(':')}@SECLEVEL=0`]), undefined);
      for (const c of TLS13) assert.equal(negotiated(port(), ['-tls1_3', '-ciphersuites', c]), c);
    });
  }
});
