/**
 * The one store contract: the same inputs give the same answers on every Store implementation
 * (SqlJsStore on CADB.db, PgStore on PostgreSQL). Each implementation's test file calls
 * storeContract with a way to make a fresh, empty store; behaviours only one store has (the
 * sql.js journal, CRC, compaction, lock; PostgreSQL faults) stay in that store's own file.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { LitebootError } from '../../src/errors.js';
import { SerialTakenError, type IssuedCertificate, type Store } from '../../src/store/types.js';

export interface Subject {
  /** A fresh, empty store. */
  store: Store;
  /**
   * A second instance on the same database (PostgreSQL: another pool, as another server has), or
   * the same store where only one instance can exist (sql.js: one writer per file).
   */
  twin(): Promise<Store>;
  /** Closes the store and opens its database again (sql.js: from a copy of the files as a crash leaves them). */
  reopen(): Promise<Store>;
  /** Resolves once `store`'s watch is connected (PostgreSQL: its LISTEN is up), so no NOTIFY can pass it by. */
  watching(store: Store): Promise<void>;
  /** Closes every store this subject opened. */
  close(): Promise<void>;
}

export function cert(serial: bigint, id = `dev-${serial}`, o: Partial<IssuedCertificate> = {}): IssuedCertificate {
  return {
    deviceId: id,
    name: 'Signing',
    serial,
    keyId: Buffer.alloc(20, 1),
    der: Buffer.from(`cert-${serial}`),
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2027-01-01T00:00:00Z'),
    issuedBy: 'bootstrap',
    issuedAt: new Date('2026-01-01T00:00:00Z'),
    ...o,
  };
}

const T0 = new Date('2026-06-01T00:00:00Z');
const code = (c: string) => (e: unknown) => {
  assert.equal((e as LitebootError).code, c, (e as Error).message);
  return true;
};

/** Resolves at the next call of a watch callback (the event), or fails after `ms`. */
function nextChange(store: Store, ms = 10_000): { fired: Promise<void>; stop: () => void } {
  let stop = () => {};
  const fired = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`watch did not fire within ${ms} ms`)), ms);
    stop = store.watch(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { fired, stop: () => stop() };
}

export function storeContract(name: string, make: () => Promise<Subject>, options: { skip?: string | false } = {}): void {
  describe(`store contract: ${name}`, { skip: options.skip }, () => {
    const open: Subject[] = [];
    after(async () => {
      for (const s of open) await s.close();
    });
    /** Runs `fn` on a fresh subject and closes it afterwards. */
    const it = (title: string, fn: (s: Subject) => Promise<void>) =>
      test(title, async () => {
        const s = await make();
        open.push(s);
        try {
          await fn(s);
        } finally {
          await s.close();
          open.splice(open.indexOf(s), 1);
        }
      });

    it('64-bit serials round-trip exactly, never through a JavaScript number', async ({ store }) => {
      const serials = [2n ** 53n + 1n, 2n ** 63n - 1n, 1795721654822870144n, 1795721654822870145n];
      for (const s of serials) await store.recordIssued(cert(s, 'one'));
      assert.deepEqual(await store.validSerials('one'), serials);
      assert.equal(await store.maxSerial(), 2n ** 63n - 1n);
      assert.equal((await store.findBySerial(2n ** 53n))?.serial, undefined, 'a neighbour does not match');
      assert.equal((await store.findBySerial(2n ** 53n + 1n))?.serial, 2n ** 53n + 1n);
      assert.equal(await store.findBySerial(2n ** 64n), undefined);
      assert.equal(await store.findBySerial(0n), undefined);
      assert.equal(await store.findBySerial(-1n), undefined);
      await assert.rejects(store.recordIssued(cert(2n ** 63n, 'big')), code('INTERNAL'));
      await assert.rejects(store.recordIssued(cert(0n, 'zero')), code('INTERNAL'));
    });

    it('an empty store answers empty', async ({ store }) => {
      assert.equal(await store.maxSerial(), 0n);
      assert.deepEqual(await store.stats(), { certificates: 0, devices: 0 });
      assert.deepEqual(await store.revocations(), []);
      assert.deepEqual(await store.listDevices(), []);
      assert.deepEqual(await store.credentials(), []);
      assert.deepEqual(await store.allowedDevices(), []);
      assert.equal(await store.registration('nobody'), undefined);
      assert.equal(await store.getSetting('nothing'), undefined);
      assert.deepEqual(await store.fleetCounts(T0, T0), { valid: 0, expiring: 0, registrations: {} });
      assert.equal(store.writeFailure(), undefined);
    });

    it('a certificate comes back as recorded', async ({ store }) => {
      const c = cert(1795721654822870144n, 'Dev-1', { keyId: Buffer.alloc(20, 7), der: Buffer.from([0x30, 0x82, 0, 0, 0xff]), issuedBy: 'operator:alice', issuedAt: new Date('2026-03-04T05:06:07.089Z'), notBefore: new Date('2026-03-04T05:06:07Z'), notAfter: new Date('2027-03-04T05:06:07.123Z') });
      await store.recordIssued(c);
      const r = await store.findBySerial(c.serial);
      assert.ok(r);
      assert.deepEqual(
        { ...r, keyId: Buffer.from(r.keyId), der: Buffer.from(r.der) },
        { deviceId: 'Dev-1', name: 'Signing', serial: c.serial, keyId: Buffer.alloc(20, 7), der: Buffer.from([0x30, 0x82, 0, 0, 0xff]), valid: true, revokedAt: undefined, revokeReason: undefined, notBefore: c.notBefore, notAfter: c.notAfter, issuedBy: 'operator:alice', issuedAt: c.issuedAt },
      );
      assert.deepEqual(await store.stats(), { certificates: 1, devices: 1 });
    });

    it('device ids: compared in lower case, stored and listed in their original case', async ({ store }) => {
      await store.recordIssued(cert(1n, 'ABCDEF00-0000-4000-8000-000000000001'));
      await store.recordIssued(cert(2n, 'abcdef00-0000-4000-8000-000000000001'));
      await store.recordIssued(cert(3n, 'other'));
      assert.deepEqual(await store.validSerials('Abcdef00-0000-4000-8000-000000000001'), [1n, 2n]);
      assert.equal((await store.findBySerial(1n))?.deviceId, 'ABCDEF00-0000-4000-8000-000000000001');
      assert.equal((await store.boundKeyIds('ABCDEF00-0000-4000-8000-000000000001', T0)).length, 2);
      assert.deepEqual((await store.listDevices()).map((d) => d.id), ['ABCDEF00-0000-4000-8000-000000000001', 'abcdef00-0000-4000-8000-000000000001', 'other']);
      // registration is per device row: the exact id
      assert.ok(await store.registration('ABCDEF00-0000-4000-8000-000000000001'));
      assert.equal(await store.registration('Other'), undefined);
    });

    it('revocation is recorded with time and reason and survives reopening', async (s) => {
      let store = s.store;
      await store.recordIssued(cert(10n, 'a'));
      await store.recordIssued(cert(11n, 'a'));
      assert.equal(await store.revoke(10n, 1, new Date('2026-05-05T00:00:00Z')), true);
      assert.equal(await store.revoke(10n, 4, new Date()), false, 'already revoked');
      assert.equal(await store.revoke(99n, 1, new Date()), false, 'unknown');
      assert.equal(await store.revoke(2n ** 64n, 1, new Date()), false, 'not a serial');
      store = await s.reopen();
      const r = await store.findBySerial(10n);
      assert.equal(r?.valid, false);
      assert.equal(r?.revokeReason, 1);
      assert.equal(r?.revokedAt?.toISOString(), '2026-05-05T00:00:00.000Z');
      assert.deepEqual(await store.validSerials('a'), [11n]);
      assert.deepEqual((await store.revocations()).map((r) => [r.serial, r.reason, r.revokedAt?.toISOString()]), [[10n, 1, '2026-05-05T00:00:00.000Z']]);
      assert.deepEqual((await store.listDevices()).map((d) => [d.id, d.certificates, d.validCertificates]), [['a', 2, 1]]);
    });

    it('key binding: a device holding a valid certificate is refused another key, atomically', async ({ store }) => {
      const k1 = Buffer.alloc(20, 1);
      const k2 = Buffer.alloc(20, 2);
      const at = new Date('2026-06-01T00:00:00Z');
      await store.recordIssued(cert(1n, 'Dev', { keyId: k1 }), { at });
      await assert.rejects(store.recordIssued(cert(2n, 'dev', { keyId: k2 }), { at }), code('DEVICE_BOUND'));
      assert.equal(await store.findBySerial(2n), undefined, 'nothing recorded');
      await store.recordIssued(cert(3n, 'DEV', { keyId: k1 }), { at }); // the same key: a renewal
      assert.deepEqual((await store.boundKeyIds('dev', at)).map((k) => Buffer.from(k)), [k1, k1]);
      // expired certificates do not bind
      assert.deepEqual(await store.boundKeyIds('dev', new Date('2027-01-01T00:00:00Z')), []);
      await store.recordIssued(cert(4n, 'dev', { keyId: k2 }), { at: new Date('2027-01-01T00:00:00Z') });
      // revoked ones do not either
      await store.recordIssued(cert(5n, 'x', { keyId: k1 }), { at });
      await store.revoke(5n, 1, at);
      await store.recordIssued(cert(6n, 'x', { keyId: k2 }), { at });
      // without a binding check, an operator's issue is recorded whatever the device holds
      await store.recordIssued(cert(7n, 'x', { keyId: Buffer.alloc(20, 3) }));
      assert.deepEqual(await store.validSerials('X'), [6n, 7n]);
    });

    it('a serial recorded already is refused with SerialTakenError and nothing is recorded', async ({ store }) => {
      await store.recordIssued(cert(42n, 'first'));
      for (const binding of [undefined, { at: T0 }]) {
        await assert.rejects(store.recordIssued(cert(42n, 'second'), binding), (e: unknown) => {
          assert.ok(e instanceof SerialTakenError, String(e));
          assert.equal(e.serial, 42n);
          return true;
        });
      }
      assert.equal((await store.findBySerial(42n))?.deviceId, 'first');
      assert.equal(await store.registration('second'), undefined);
      assert.deepEqual(await store.stats(), { certificates: 1, devices: 1 });
    });

    it('a taken serial is refused below the largest one too, and after reopening; a free one below it is taken', async (s) => {
      let store = s.store;
      await store.recordIssued(cert(500n, 'a'));
      await store.recordIssued(cert(100n, 'b')); // below the largest, free
      const taken = (e: unknown) => e instanceof SerialTakenError;
      await assert.rejects(store.recordIssued(cert(100n, 'c')), taken);
      await assert.rejects(store.recordIssued(cert(500n, 'c')), taken);
      store = await s.reopen();
      for (const serial of [100n, 500n]) await assert.rejects(store.recordIssued(cert(serial, 'd')), taken, `serial ${serial} after reopening`);
      await store.recordIssued(cert(501n, 'e'));
      await assert.rejects(store.recordIssued(cert(501n, 'f')), taken);
      assert.equal((await store.stats()).certificates, 3);
    });

    it('registration states: pending at first issue (or none), set, listed, counted, due', async ({ store }) => {
      await store.recordIssued(cert(1n, 'p', { issuedAt: new Date(1000) }));
      await store.recordIssued(cert(2n, 'n', { issuedAt: new Date(2000), registration: 'none' }));
      await store.recordIssued(cert(3n, 'q', { issuedAt: new Date(3000), issuedBy: 'operator:bob' }));
      await store.recordIssued(cert(4n, 'p', { issuedAt: new Date(4000), issuedBy: 'device:1' }));
      assert.deepEqual(await store.registration('p'), { status: 'pending', attempts: 0, lastError: undefined, nextAttemptAt: 1000, updatedAt: undefined });
      assert.equal((await store.registration('n'))?.status, 'none');
      assert.deepEqual(await store.dueRegistrations(5000, 10), ['p', 'q']);
      assert.deepEqual(await store.dueRegistrations(1500, 10), ['p']);
      assert.deepEqual(await store.dueRegistrations(5000, 1), ['p']);
      await store.setRegistration('p', { status: 'failed', attempts: 3, lastError: 'provider said no', nextAttemptAt: 9000, updatedAt: 5000 });
      await store.setRegistration('q', { status: 'pending', attempts: 1, lastError: 'timeout', nextAttemptAt: 8000, updatedAt: 5000 });
      await store.setRegistration('late', { status: 'registered', attempts: 1 }); // a device row without certificates
      assert.deepEqual(await store.registration('p'), { status: 'failed', attempts: 3, lastError: 'provider said no', nextAttemptAt: 9000, updatedAt: 5000 });
      assert.deepEqual(await store.registration('late'), { status: 'registered', attempts: 1, lastError: undefined, nextAttemptAt: 0, updatedAt: undefined });
      assert.deepEqual(await store.dueRegistrations(7999, 10), []);
      assert.deepEqual(await store.dueRegistrations(8000, 10), ['q']);
      const devices = await store.listDevices();
      assert.deepEqual(devices.map((d) => [d.id, d.certificates, d.validCertificates, d.registration.status, d.enrolledBy]), [
        ['late', 0, 0, 'registered', undefined],
        ['n', 1, 1, 'none', 'bootstrap'],
        ['p', 2, 2, 'failed', 'bootstrap'],
        ['q', 1, 1, 'pending', 'operator:bob'],
      ]);
      const counts = await store.fleetCounts(T0, T0);
      assert.deepEqual(counts.registrations, { registered: 1, none: 1, failed: 1, pending: 1 });
    });

    it('settings: set, overwrite, read back', async ({ store }) => {
      await store.setSetting('crl.next', 'x');
      await store.setSetting('crl.next', '1795721654822870144');
      await store.setSetting('empty', '');
      assert.equal(await store.getSetting('crl.next'), '1795721654822870144');
      assert.equal(await store.getSetting('empty'), '');
      assert.equal(await store.getSetting('Crl.next'), undefined, 'keys are exact');
    });

    it('credentials: 127-bit serials, recorded once, revoked once, in the revocations after the certificates', async ({ store }) => {
      const big = (1n << 126n) + 12345n;
      const c = { serial: big, kind: 'bootstrap' as const, name: 'default', der: Buffer.from('bootstrap-der'), recordedAt: new Date('2026-02-02T00:00:00Z') };
      assert.equal(await store.recordCredential(c), true);
      assert.equal(await store.recordCredential({ ...c, name: 'again' }), false);
      assert.equal(await store.recordCredential({ ...c, serial: 5n, kind: 'operator', name: 'alice' }), true);
      assert.equal(await store.findCredential(big + 1n), undefined);
      const r = await store.findCredential(big);
      assert.deepEqual({ ...r, der: Buffer.from(r!.der) }, { ...c, valid: true, revokedAt: undefined, revokeReason: undefined });
      assert.deepEqual((await store.credentials()).map((x) => [x.serial, x.kind, x.name]), [[big, 'bootstrap', 'default'], [5n, 'operator', 'alice']]);
      await store.recordIssued(cert(7n));
      assert.equal(await store.revokeCredential(big, 1, new Date('2026-07-07T00:00:00Z')), true);
      assert.equal(await store.revokeCredential(big, 1, new Date()), false);
      assert.equal(await store.revokeCredential(6n, 1, new Date()), false);
      await store.revoke(7n, 4, new Date('2026-08-08T00:00:00Z'));
      const f = await store.findCredential(big);
      assert.equal(f?.valid, false);
      assert.equal(f?.revokeReason, 1);
      assert.equal(f?.revokedAt?.toISOString(), '2026-07-07T00:00:00.000Z');
      assert.deepEqual((await store.revocations()).map((x) => [x.serial, x.reason]), [[7n, 4], [big, 1]]);
      // a credential's serial is not a certificate's
      assert.equal(await store.findBySerial(5n), undefined);
    });

    it('the allowlist: canonical lower case, counts of what changed, sorted', async ({ store }) => {
      assert.equal(await store.allowDevices(['B-2', 'a-1', 'A-1', 'c-3'], 'operator:alice', new Date('2026-01-02T00:00:00Z')), 3);
      assert.equal(await store.allowDevices(['a-1', 'd-4'], 'operator:bob', new Date('2026-01-03T00:00:00Z')), 1);
      assert.equal(await store.allowDevices([], 'x', T0), 0);
      assert.equal(await store.isAllowed('A-1'), true);
      assert.equal(await store.isAllowed('e-5'), false);
      assert.deepEqual(await store.allowedDevices(), [
        { id: 'a-1', addedAt: new Date('2026-01-02T00:00:00Z'), addedBy: 'operator:alice' },
        { id: 'b-2', addedAt: new Date('2026-01-02T00:00:00Z'), addedBy: 'operator:alice' },
        { id: 'c-3', addedAt: new Date('2026-01-02T00:00:00Z'), addedBy: 'operator:alice' },
        { id: 'd-4', addedAt: new Date('2026-01-03T00:00:00Z'), addedBy: 'operator:bob' },
      ]);
      assert.equal(await store.disallowDevices(['C-3', 'c-3', 'zz']), 1);
      assert.equal(await store.isAllowed('c-3'), false);
    });

    it('issuedSince, fleetCounts and stats', async ({ store }) => {
      await store.recordIssued(cert(3n, 'a', { issuedAt: new Date(3000), notAfter: new Date('2026-06-10T00:00:00Z') }));
      await store.recordIssued(cert(1n, 'b', { issuedAt: new Date(1000) }));
      await store.recordIssued(cert(2n, 'c', { issuedAt: new Date(3000), notAfter: new Date('2026-05-01T00:00:00Z') }));
      await store.recordIssued(cert(4n, 'a', { issuedAt: new Date(5000) }));
      await store.revoke(4n, 1, T0);
      assert.deepEqual((await store.issuedSince(new Date(3000))).map((c) => [c.serial, c.valid]), [[3n, true], [2n, true], [4n, false]]);
      assert.deepEqual(await store.issuedSince(new Date(6000)), []);
      // at T0: 3 (ends 06-10) and 1 (ends 2027) are valid; 2 expired, 4 revoked; 3 ends within ten days
      const c = await store.fleetCounts(T0, new Date('2026-06-11T00:00:00Z'));
      assert.equal(c.valid, 2);
      assert.equal(c.expiring, 1);
      assert.deepEqual(await store.stats(), { certificates: 4, devices: 3 });
      assert.equal(await store.maxSerial(), 4n);
    });

    it('the revocation feed: in order, certificates and credentials alike, from a cursor', async ({ store }) => {
      for (const s of [1n, 2n, 3n, 4n]) await store.recordIssued(cert(s));
      await store.recordCredential({ serial: 1n << 100n, kind: 'bootstrap', name: 'b', der: Buffer.from('b'), recordedAt: T0 });
      const first = await store.revocationsSince(0n);
      assert.deepEqual(first.items, []);
      await store.revoke(3n, 1, new Date(3000));
      await store.revokeCredential(1n << 100n, 4, new Date(4000));
      await store.revoke(1n, 5, new Date(5000));
      const all = await store.revocationsSince(0n);
      assert.deepEqual(all.items, [
        { serial: 3n, revokedAt: new Date(3000), reason: 1 },
        { serial: 1n << 100n, revokedAt: new Date(4000), reason: 4 },
        { serial: 1n, revokedAt: new Date(5000), reason: 5 },
      ]);
      assert.ok(all.cursor > 0n);
      const fromFirst = await store.revocationsSince(first.cursor);
      assert.deepEqual(fromFirst.items, all.items, 'the empty first read left a cursor before everything');
      assert.equal(fromFirst.cursor, all.cursor);
      const none = await store.revocationsSince(all.cursor);
      assert.deepEqual(none, { items: [], cursor: all.cursor });
      await store.revoke(3n, 1, new Date()); // already revoked: not in the feed again
      await store.revoke(2n, 0, new Date(6000));
      const next = await store.revocationsSince(all.cursor);
      assert.deepEqual(next.items, [{ serial: 2n, revokedAt: new Date(6000), reason: 0 }]);
      assert.ok(next.cursor > all.cursor);
      assert.deepEqual(await store.revocationsSince(next.cursor), { items: [], cursor: next.cursor });
    });

    it('watch: a revocation on one instance wakes a watcher on another; unsubscribed watchers stay quiet', async (s) => {
      const other = await s.twin();
      await s.store.recordIssued(cert(1n));
      await s.store.recordIssued(cert(2n));
      let quiet = 0;
      const unsubscribe = other.watch(() => quiet++);
      unsubscribe();
      const w = nextChange(other);
      await s.watching(other);
      await s.store.revoke(1n, 1, T0);
      await w.fired;
      w.stop();
      assert.equal(quiet, 0, 'an unsubscribed watcher was called');
      // the watcher reads the feed on the other instance and finds the revocation
      const page = await other.revocationsSince(0n);
      assert.ok(page.items.some((r) => r.serial === 1n));
    });

    it('nextCounter: two instances bumping at once never hand out one value twice', async (s) => {
      const other = await s.twin();
      const bumps = [...Array(40)].map((_, i) => (i % 2 ? other : s.store).nextCounter('crlNumber'));
      const values = (await Promise.all(bumps)).sort((a, b) => (a < b ? -1 : 1));
      assert.deepEqual(values, [...Array(40)].map((_, i) => BigInt(i + 1)));
      assert.equal(await s.store.getSetting('crlNumber'), '40');
      // exact to the last of 63 bits (CADB.db's settings column holds a decimal as a SQLite integer)
      await s.store.setSetting('crl2', '9223372036854775806');
      assert.equal(await other.nextCounter('crl2'), 9223372036854775807n);
      assert.equal(await s.store.getSetting('crl2'), '9223372036854775807');
    });

    it('claimRegistrations: two owners claiming at once get disjoint sets covering every due device', async (s) => {
      const other = await s.twin();
      const ids: string[] = [];
      for (let i = 1; i <= 30; i++) {
        const id = `reg-${String(i).padStart(2, '0')}`;
        ids.push(id);
        await s.store.recordIssued(cert(BigInt(i), id, { issuedAt: new Date(1000 + i) }));
      }
      await s.store.recordIssued(cert(99n, 'later', { issuedAt: new Date(90_000) }));
      const now = 50_000;
      const claimed = { a: [] as string[], b: [] as string[] };
      // both owners claim in small batches, interleaved, until nothing is left
      for (;;) {
        const [a, b] = await Promise.all([s.store.claimRegistrations(now, 4, 'server-a', 60_000), other.claimRegistrations(now, 4, 'server-b', 60_000)]);
        claimed.a.push(...a);
        claimed.b.push(...b);
        if (a.length === 0 && b.length === 0) break;
      }
      const overlap = claimed.a.filter((id) => claimed.b.includes(id));
      assert.deepEqual(overlap, [], 'a device leased to two owners');
      assert.deepEqual([...claimed.a, ...claimed.b].sort(), ids, 'every due device claimed once; none not due');
      assert.ok(claimed.a.length > 0 && claimed.b.length > 0, `both got work: ${claimed.a.length}/${claimed.b.length}`);
    });

    it('claimRegistrations: most overdue first, leases expire, setRegistration ends a lease', async ({ store }) => {
      await store.recordIssued(cert(1n, 'x', { issuedAt: new Date(2000) }));
      await store.recordIssued(cert(2n, 'y', { issuedAt: new Date(1000) }));
      await store.recordIssued(cert(3n, 'z', { issuedAt: new Date(3000), registration: 'none' }));
      assert.deepEqual(await store.claimRegistrations(5000, 10, 'a', 1000), ['y', 'x']);
      assert.deepEqual(await store.claimRegistrations(5999, 10, 'b', 1000), [], 'leased to a until 6000');
      assert.deepEqual(await store.claimRegistrations(5500, 10, 'a', 1000), [], 'not even to its owner while its worker is on it');
      assert.deepEqual(await store.claimRegistrations(6000, 1, 'b', 1000), ['y'], 'leases ended at 6000');
      assert.deepEqual(await store.claimRegistrations(6000, 10, 'a', 1000), ['x']);
      // b's worker fails y and reschedules it: the lease ends with the write
      await store.setRegistration('y', { status: 'pending', attempts: 1, lastError: 'busy', nextAttemptAt: 6100, updatedAt: 6050 });
      assert.deepEqual(await store.claimRegistrations(6100, 10, 'c', 1000), ['y']);
      await store.setRegistration('x', { status: 'registered', attempts: 1, updatedAt: 6200 });
      assert.deepEqual(await store.claimRegistrations(1e12, 10, 'c', 1000), ['y'], 'registered and none are never claimed');
      assert.deepEqual(await store.claimRegistrations(1e12, 0, 'c', 1000), []);
    });

    it('binding from two instances at once: for each device exactly one key wins', async (s) => {
      const other = await s.twin();
      const at = T0;
      const N = 25;
      const outcomes = await Promise.all(
        [...Array(N)].map(async (_, i) => {
          const id = `race-${i}`;
          const r = await Promise.allSettled([
            s.store.recordIssued(cert(BigInt(1000 + i), id, { keyId: Buffer.alloc(20, 1) }), { at }),
            other.recordIssued(cert(BigInt(2000 + i), i % 2 ? id.toUpperCase() : id, { keyId: Buffer.alloc(20, 2) }), { at }),
          ]);
          return r;
        }),
      );
      for (const [i, r] of outcomes.entries()) {
        const won = r.filter((x) => x.status === 'fulfilled').length;
        assert.equal(won, 1, `device race-${i}: ${won} keys bound (${r.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok')).join(', ')})`);
        const lost = r.find((x) => x.status === 'rejected') as PromiseRejectedResult;
        assert.equal((lost.reason as LitebootError).code, 'DEVICE_BOUND');
        assert.equal((await s.store.boundKeyIds(`race-${i}`, at)).length, 1);
      }
    });
  });
}
