/**
 * A revocation whose CRL rebuild fails (the store away when the CRL number is taken) is durable and
 * answered as done; the CRL is rebuilt by the next resync, not left behind until nextUpdate/2.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { CertsDir } from '../../src/ca/certs-dir.js';
import { TimestampSerials } from '../../src/ca/serial-source.js';
import { LitebootError } from '../../src/errors.js';
import { openStoreAt } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from '../helpers/run.js';
import { makeCaDir } from '../helpers/server.js';
import { cert } from '../store/contract.js';

const t = tempDir('liteboot-crl-dirty-');
after(() => t.cleanup());

test('krr succeeds when the CRL rebuild fails; the resync publishes the revocation', async () => {
  await makeCaDir(t.dir);
  const ca = new CertsDir(join(t.dir, 'certs')).loadCa();
  const real = await openStoreAt(join(t.dir, 'CADB.db'), {});
  let failNext = false;
  // The real store, but its counter fails once, as PgStore.nextCounter does while PostgreSQL is down.
  const store: Store = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'nextCounter' && failNext) {
        failNext = false;
        return () => Promise.reject(new LitebootError('DB_UNAVAILABLE', 'the database is not reachable'));
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
  const warnings: string[] = [];
  const a = new Authority({ store, issuer: ca.issuer, policy: { requireUuid: false }, deviceDays: 30, registration: 'none', serials: new TimestampSerials(0n), clock: () => new Date(), warn: (m) => warnings.push(m) });
  try {
    await real.recordIssued(cert(4242n, 'dev-crl'));
    await a.loadRevocations();
    const before = a.crls.latest!;
    failNext = true;
    await a.revoke(4242n, 1, { role: 'operator', cn: 'alice', serial: 1n, label: 'operator:alice' }); // resolves: the revocation is durable
    assert.equal((await real.findBySerial(4242n))?.valid, false);
    assert.equal(a.isRevoked(4242n), true);
    assert.equal(a.crls.latest, before, 'the failed rebuild published nothing');
    assert.equal(a.crls.dirty, true);
    assert.match(warnings.join('\n'), /cannot publish a CRL with serial 4242 yet/);
    // The periodic resync (nothing new in the feed) rebuilds because the CRL is dirty.
    await a.sync();
    const crl = a.crls.latest!;
    assert.ok(crl.number > before.number);
    assert.equal(crl.entries, 1);
    assert.equal(a.crls.dirty, false);
  } finally {
    a.stop();
    await real.close();
  }
});
