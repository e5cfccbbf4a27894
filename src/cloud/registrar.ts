import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { toPem } from '../asn1/pem.js';
import type { AuditSink } from '../audit/audit-log.js';
import type { CloudConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Registration, Store } from '../store/types.js';
import { RegistrationError, type Provider } from './provider.js';

export interface RegistrarOptions {
  store: Store;
  /** undefined: provider `none` (devices are marked as not registered anywhere). */
  provider: Provider | undefined;
  cfg: CloudConfig;
  log: Logger;
  clock?: () => number;
  /** Registration outcomes (registered, or given up on) go to the audit trail. */
  audit?: AuditSink;
  /** Who holds the leases this registrar takes (default: host:pid:random, one per process). */
  owner?: string;
}

/**
 * How long a claimed device stays this registrar's: longer than one attempt (the provider's
 * timeout, plus the store's writes), so no other server registers it meanwhile; after a crash
 * another server takes it over once the lease ends.
 */
export function leaseMs(cfg: CloudConfig): number {
  return 2 * cfg.timeoutMs + 10_000;
}

/**
 * Registers every new device with the cloud service, in the background. Issuance only marks a
 * device pending (in the store, durably) and wakes the registrar; the registrar takes due
 * devices, calls the provider, and records each attempt, its error and the next try (exponential
 * backoff from retry_min to retry_max, or the service's Retry-After). Pending devices are picked
 * up again after a restart, so nothing is lost; a provider that is down, slow or refusing never
 * touches issuance.
 *
 * Several servers on one store: a device is claimed with a lease (store.claimRegistrations)
 * before it is attempted, so each device is registered by one server at a time; recording the
 * outcome ends the lease.
 */
export class Registrar {
  private readonly inFlight = new Map<string, AbortController>();
  private readonly attempts = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private wakeSoon = false;
  private stopped = false;
  private readonly clock: () => number;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  /** This process's name on the leases it holds. */
  readonly owner: string;

  constructor(private readonly o: RegistrarOptions) {
    this.clock = o.clock ?? Date.now;
    this.pollMs = Math.min(1000, o.cfg.retryMinMs);
    this.leaseMs = leaseMs(o.cfg);
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  }

  start(): void {
    if (this.o.provider) this.schedule(0);
    else void this.markUnregistered();
  }

  /** Provider `none`: devices left pending (by another provider, or the original server) are marked `none`. */
  private async markUnregistered(): Promise<void> {
    try {
      for (let due = await this.o.store.dueRegistrations(Number.MAX_SAFE_INTEGER, 500); due.length > 0 && !this.stopped; due = await this.o.store.dueRegistrations(Number.MAX_SAFE_INTEGER, 500)) {
        for (const id of due) {
          const prev = await this.o.store.registration(id);
          await this.record(id, { status: 'none', attempts: prev?.attempts ?? 0, updatedAt: this.clock() });
        }
      }
    } catch (e) {
      this.o.log.error(`cloud: cannot mark devices as not registered: ${(e as Error).message}`);
    }
  }

  /** A certificate was issued: register its device soon (at most one wake-up per 50 ms under load). */
  notifyIssued(): void {
    if (!this.o.provider || this.wakeSoon) return;
    this.wakeSoon = true;
    this.schedule(50);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.wakeSoon = false;
    if (!this.o.provider) return; // provider none: devices are recorded as `none` when issued
    try {
      const free = this.o.cfg.concurrency - this.inFlight.size;
      if (free > 0) {
        // A leased device is not handed out again (devices in flight here hold leases), so ask for
        // exactly the free slots: a claimed device left unattempted would wait out its lease.
        const due = (await this.o.store.claimRegistrations(this.clock(), free, this.owner, this.leaseMs)).filter((id) => !this.inFlight.has(id));
        for (const id of due) {
          // attempt() handles its own failures; the catch is the net that keeps one from ever
          // becoming an unhandled rejection (which would stop the server).
          const p = this.attempt(id)
            .catch((e: Error) => this.o.log.error(`cloud: registering ${id} failed: ${e.message}`))
            .finally(() => this.attempts.delete(p));
          this.attempts.add(p);
        }
      }
    } catch (e) {
      this.o.log.error(`cloud: cannot read pending registrations: ${(e as Error).message}`);
    }
    this.schedule(this.pollMs);
  }

  private async record(deviceId: string, reg: Registration): Promise<void> {
    try {
      await this.o.store.setRegistration(deviceId, reg);
    } catch (e) {
      this.o.log.error(`cloud: cannot record the registration state of ${deviceId}: ${(e as Error).message}`);
    }
  }

  private async attempt(deviceId: string): Promise<void> {
    const abort = new AbortController();
    this.inFlight.set(deviceId, abort);
    try {
      let prev: Registration | undefined;
      let newest: Awaited<ReturnType<Store['findBySerial']>>;
      try {
        prev = (await this.o.store.registration(deviceId)) ?? { status: 'pending', attempts: 0 };
        const serials = await this.o.store.validSerials(deviceId);
        newest = serials.length ? await this.o.store.findBySerial(serials[serials.length - 1]!) : undefined;
      } catch (e) {
        // The store is away (DB_UNAVAILABLE while PostgreSQL restarts): the device stays pending and
        // is tried again after the shortest backoff. Recording that ends the lease; when the store
        // cannot take even that write, the lease simply expires (leaseMs) and any server takes it.
        const at = this.clock();
        this.o.log.warn(`cloud: cannot read the registration state of ${deviceId}: ${(e as Error).message}; next try in ${(this.o.cfg.retryMinMs / 1000).toFixed(1)} s`);
        if (prev) await this.o.store.setRegistration(deviceId, { ...prev, status: 'pending', nextAttemptAt: at + this.o.cfg.retryMinMs, updatedAt: at }).catch(() => {});
        return;
      }
      const now = this.clock();
      if (!this.o.provider) return;
      if (!newest) {
        await this.record(deviceId, { status: 'failed', attempts: prev.attempts, lastError: 'the device has no valid certificate to register', updatedAt: now });
        return;
      }
      const n = prev.attempts + 1;
      try {
        await this.o.provider.register(
          { deviceId, serial: newest.serial, certificatePem: toPem('CERTIFICATE', newest.der), issuedAt: newest.issuedAt ?? newest.notBefore },
          abort.signal,
        );
        await this.o.audit?.append({ event: 'registration', device: deviceId, outcome: 'registered', provider: this.o.provider.name, attempts: n }).catch((e: Error) => this.o.log.error(`audit: ${e.message}`));
        await this.record(deviceId, { status: 'registered', attempts: n, updatedAt: this.clock() });
        this.o.log.info(`cloud: registered ${deviceId} with ${this.o.provider.name} (attempt ${n})`);
      } catch (e) {
        if (this.stopped) {
          // Aborted by shutdown: still pending, and released at once (recording ends the lease) for
          // another server on the store, or this one after a restart.
          await this.record(deviceId, { ...prev, status: 'pending', nextAttemptAt: this.clock(), updatedAt: this.clock() });
          return;
        }
        const err = e instanceof RegistrationError ? e : new RegistrationError((e as Error).message);
        const delay = err.retryAfterMs ?? Math.min(this.o.cfg.retryMaxMs, this.o.cfg.retryMinMs * 2 ** Math.min(n - 1, 30));
        const at = this.clock();
        if (err.permanent) {
          await this.o.audit?.append({ event: 'registration', device: deviceId, outcome: 'failed', provider: this.o.provider.name, attempts: n, error: err.message }).catch((e: Error) => this.o.log.error(`audit: ${e.message}`));
        }
        await this.record(deviceId, { status: err.permanent ? 'failed' : 'pending', attempts: n, lastError: err.message, nextAttemptAt: at + delay, updatedAt: at });
        this.o.log.warn(
          `cloud: registering ${deviceId} with ${this.o.provider.name} failed (attempt ${n}): ${err.message}; ${err.permanent ? 'giving up until an operator retries (liteboot device register)' : `next try in ${(delay / 1000).toFixed(1)} s`}`,
        );
      }
    } finally {
      this.inFlight.delete(deviceId);
    }
  }

  /** An operator's "try now": makes one device, or every device not registered, due at once. */
  async retryNow(deviceId?: string): Promise<number> {
    const devices = deviceId ? [deviceId] : (await this.o.store.listDevices()).filter((d) => d.registration.status !== 'registered').map((d) => d.id);
    let n = 0;
    for (const id of devices) {
      const reg = await this.o.store.registration(id);
      if (!reg || reg.status === 'registered') continue;
      // Due already: nothing to hurry, and writing would end the lease of a server working on it.
      const due = reg.status === 'pending' && (reg.nextAttemptAt ?? 0) <= this.clock();
      if (!due) await this.o.store.setRegistration(id, { ...reg, status: 'pending', nextAttemptAt: this.clock(), updatedAt: this.clock() });
      n++;
    }
    this.schedule(0);
    return n;
  }

  /** Stops scheduling and abandons attempts in flight (their devices stay pending). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const a of this.inFlight.values()) a.abort();
    await Promise.allSettled([...this.attempts]);
  }
}
