/**
 * The registrar on a real PostgreSQL that goes away between claiming a device and reading it
 * (issue 14 review): the attempt's store reads fail with DB_UNAVAILABLE. That must not become an
 * unhandled rejection (it stopped the server); the device stays pending and is registered once
 * the database is back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Registrar } from '../../src/cloud/registrar.js';
import type { DeviceToRegister, Provider } from '../../src/cloud/provider.js';
import type { CloudConfig } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import { openStoreAt } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { pgUnavailable, startPostgres, type PgCluster } from '../helpers/pg.js';
import { cert } from '../store/contract.js';

const skip = pgUnavailable();

describe('registrar on PostgreSQL restarted while registrations are due', { skip }, () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a DB_UNAVAILABLE inside an attempt keeps the device pending; registered once the database is back', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const url = await cluster.createDatabase();
    const store = await openStoreAt(url, {});
    const lines: string[] = [];
    const log: Logger = { debug: () => {}, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), request: () => {}, flush: () => {} };
    let registered!: (d: DeviceToRegister) => void;
    const done = new Promise<DeviceToRegister>((r) => (registered = r));
    const provider: Provider = { name: 'test', register: async (d) => registered(d) };
    let halted = false;
    // The real store, halted (a real outage) right after it handed out the claim: the attempt's
    // reads are the first queries to meet the dead database.
    const outage: Store = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'claimRegistrations') {
          return async (...a: Parameters<Store['claimRegistrations']>) => {
            const ids = await target.claimRegistrations(...a);
            if (ids.length && !halted) {
              halted = true;
              await cluster.halt();
            }
            return ids;
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
      },
    });
    const cfg = { provider: 'webhook', timeoutMs: 500, retryMinMs: 100, retryMaxMs: 200, concurrency: 4 } as CloudConfig;
    const r = new Registrar({ store: outage, provider, cfg, log });
    try {
      await store.recordIssued(cert(7n, 'dev-outage', { registration: 'pending' }));
      r.start();
      while (!halted) await new Promise((res) => setTimeout(res, 20));
      // Wait for the attempt to meet the outage (its one log line), then bring the database back.
      while (!lines.some((l) => /cannot read the registration state of dev-outage/.test(l)) && unhandled.length === 0) await new Promise((res) => setTimeout(res, 20));
      assert.deepEqual(unhandled.map(String), [], 'no unhandled rejection');
      await cluster.resume();
      const d = await done; // after the lease ran out, the registrar claims it again
      assert.equal(d.deviceId, 'dev-outage');
      for (let i = 0; i < 200 && (await store.registration('dev-outage'))?.status !== 'registered'; i++) await new Promise((res) => setTimeout(res, 25));
      assert.equal((await store.registration('dev-outage'))?.status, 'registered');
      assert.deepEqual(unhandled.map(String), []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await r.stop();
      await store.close();
    }
  });
});
