import { createHash } from 'node:crypto';
import { buildCrl, encodeCrlEntry } from '../asn1/crl.js';
import { toPem } from '../asn1/pem.js';
import type { Store } from '../store/types.js';
import { DAY_MS, type Issuer } from './profiles.js';

/** The CRL as served: built once per change, then handed out from memory. */
export interface PublishedCrl {
  der: Buffer;
  pem: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** A strong validator for conditional GETs: the SHA-256 of the DER, quoted. */
  etag: string;
  entries: number;
}

export interface CrlPublisherOptions {
  issuer: Issuer;
  store: Store;
  clock: () => Date;
  /** Validity of each CRL (`nextUpdate - thisUpdate`), in days. */
  days: number;
  /**
   * Beside a running server (a read-only store): reuse the number of the server's current CRL,
   * whose entries are the same durable ones, instead of taking a new one.
   */
  readOnly?: boolean;
  /**
   * Called after the CRL's number is taken and before the entries are read: brings the entries up
   * to date with the store (the revocation feed), so a CRL carries every revocation that a CRL
   * with a smaller number carried, whichever server built that one.
   */
  catchUp?: () => Promise<void>;
}

/** The store counter that keeps the last CRL number, so that it only ever grows (RFC 5280 §5.2.3), shared by every server on the store. */
export const CRL_NUMBER_SETTING = 'liteboot.crlNumber';

/**
 * Keeps this process's current CRL (each server on a shared store builds its own, numbered from
 * the store's one counter). Entries are kept encoded and added as revocations happen, so a
 * rebuild costs one concatenation and one signature, not a scan of the database. Rebuilds are
 * coalesced: revocations arriving while one runs share the next.
 */
export class CrlPublisher {
  private readonly entries = new Map<bigint, Buffer>();
  private current: PublishedCrl | undefined;
  private building: Promise<PublishedCrl> | undefined;
  private next: Promise<PublishedCrl> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: ((crl: PublishedCrl) => void)[] = [];
  /** Entries added so far, and how many of those the last successful build had seen (see dirty). */
  private added = 0;
  private built = 0;

  constructor(private readonly o: CrlPublisherOptions) {}

  /** Adds a revoked certificate (not yet published: call rebuild()). */
  add(serial: bigint, revokedAt: Date, reason?: number): void {
    this.entries.set(serial, encodeCrlEntry({ serial, revokedAt, reason }));
    this.added++;
  }

  /**
   * An entry was added that no published CRL carries yet (its rebuild failed, e.g. the store was
   * away when the number was taken, or has not run yet): the authority's resync rebuilds until clear.
   */
  get dirty(): boolean {
    return this.built < this.added;
  }

  /** Called with each new CRL (for `crl_file`). */
  onPublished(listener: (crl: PublishedCrl) => void): void {
    this.listeners.push(listener);
  }

  /** The current CRL; builds the first one if there is none yet. */
  async crl(): Promise<PublishedCrl> {
    return this.current ?? this.rebuild();
  }

  /** The current CRL, if one was built (synchronous, for the request path). */
  get latest(): PublishedCrl | undefined {
    return this.current;
  }

  /**
   * Builds and publishes a new CRL with every entry added so far; resolves once it is served.
   * One build runs at a time; every call made during a build shares the one after it.
   */
  rebuild(): Promise<PublishedCrl> {
    this.next ??= (this.building ?? Promise.resolve()).catch(() => {}).then(() => {
      this.next = undefined;
      this.building = this.build().finally(() => {
        this.building = undefined;
      });
      return this.building;
    });
    return this.next;
  }

  private async build(): Promise<PublishedCrl> {
    const now = this.o.clock();
    // One counter for every server on the store, taken atomically and durable before anyone sees
    // the CRL (earlier versions used the clock in ms; a store from them continues from there).
    let number: bigint;
    if (this.o.readOnly) number = BigInt((await this.o.store.getSetting(CRL_NUMBER_SETTING)) ?? '1');
    else number = await this.o.store.nextCounter(CRL_NUMBER_SETTING);
    await this.o.catchUp?.();
    // The entries as of the catch-up, taken at once: what the number promises (every revocation a
    // smaller number carried) is what is signed and counted, not entries added during the signing.
    const seen = this.added;
    const entries = [...this.entries.values()];
    const nextUpdate = new Date(Math.min(now.getTime() + this.o.days * DAY_MS, Math.max(this.o.issuer.notAfter.getTime(), now.getTime() + DAY_MS)));
    const der = await buildCrl(
      { issuerDer: this.o.issuer.subjectDer, issuerKeyId: this.o.issuer.keyId, thisUpdate: now, nextUpdate, number, entries },
      this.o.issuer.signer,
    );
    const crl: PublishedCrl = {
      der,
      pem: toPem('X509 CRL', der),
      number,
      thisUpdate: now,
      nextUpdate,
      etag: `"${createHash('sha256').update(der).digest('base64url')}"`,
      entries: entries.length,
    };
    this.current = crl;
    this.built = Math.max(this.built, seen);
    this.schedule(crl);
    for (const l of this.listeners) l(crl);
    return crl;
  }

  /** A fresh CRL halfway to nextUpdate, so relying parties never hold an expired one. */
  private schedule(crl: PublishedCrl): void {
    clearTimeout(this.timer);
    const due = Math.max(1000, (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2);
    this.timer = setTimeout(() => void this.rebuild().catch(() => {}), Math.min(due, 2 ** 31 - 1));
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
