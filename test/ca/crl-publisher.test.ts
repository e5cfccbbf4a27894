import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { CRL_NUMBER_SETTING, CrlPublisher } from '../../src/ca/crl-publisher.js';
import { openStore } from '../../src/store/sqljs-store.js';
import { makeCaDir } from '../helpers/server.js';
import { openssl, tempDir } from '../helpers/run.js';

const t = tempDir('liteboot-crl-');
after(() => t.cleanup());

test('a CRL of 150,000 entries builds (no argument spread), verifies under openssl, and its number comes from the store\'s counter', async () => {
  await makeCaDir(t.dir);
  const ca = new CertsDir(join(t.dir, 'certs')).loadCa();
  const store = await openStore({ path: join(t.dir, 'CADB.db') });
  try {
    let now = new Date('2026-12-01T00:00:00Z');
    const pub = new CrlPublisher({ issuer: ca.issuer, store, clock: () => now, days: 7 });
    for (let i = 1; i <= 150_000; i++) pub.add(BigInt(i) * 7919n, new Date(now.getTime() - i * 1000), i % 2 ? 1 : undefined);
    // A store from a version that numbered CRLs by the clock (ms) continues from there.
    await store.setSetting(CRL_NUMBER_SETTING, '1795000000000');
    const first = await pub.rebuild();
    assert.equal(first.entries, 150_000);
    assert.equal(first.number, 1795000000001n);
    writeFileSync(join(t.dir, 'big.crl'), first.der);
    const v = openssl(['crl', '-inform', 'DER', '-in', join(t.dir, 'big.crl'), '-CAfile', join(t.dir, 'certs', 'CA.crt'), '-noout']);
    assert.match(v.stdout + v.stderr, /verify OK/);
    // A clock that went back still gives a larger number; and so does another publisher (another
    // server) on the same store: one counter for all.
    now = new Date('2026-11-01T00:00:00Z');
    const other = new CrlPublisher({ issuer: ca.issuer, store, clock: () => now, days: 7 });
    assert.equal((await other.rebuild()).number, first.number + 1n);
    other.stop();
    const second = await pub.rebuild();
    assert.equal(second.number, first.number + 2n);
    assert.equal(await store.getSetting(CRL_NUMBER_SETTING), second.number.toString());
    // Rebuilds asked for at once share one build after the current one.
    const [a, b, c] = await Promise.all([pub.rebuild(), pub.rebuild(), pub.rebuild()]);
    assert.equal(a.number, second.number + 1n);
    assert.equal(b.number, c.number);
    assert.ok(b.number >= a.number);
    pub.stop();
  } finally {
    await store.close();
  }
});
