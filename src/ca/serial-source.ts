import { randomInt } from 'node:crypto';

/** The low bits of every serial this process gives: its salt (see TimestampSerials). */
export const SALT_BITS = 10n;
const SLOT = 1n << SALT_BITS;

/**
 * Device certificate serials, as the original documents them: a timestamp in nanoseconds
 * (e.g. 1795721654822870144). Strictly increasing, above every serial already in the store,
 * below 2^63 (a positive SQLite INTEGER / PostgreSQL int8; RFC 5280 §4.1.2.2 allows up to 20 octets).
 *
 * Several servers on one store: the low 10 bits of each serial are a random salt chosen once per
 * process, so two servers can only collide if they drew the same salt (1 in 1024) AND issue in
 * the same 1.024 µs; the store's unique key catches that rare case and the authority re-signs.
 */
export class TimestampSerials {
  private last: bigint;
  readonly salt: bigint;

  /** `nowNs` and `salt` are injectable so tests can replay; the defaults are the wall clock at ns resolution and a random salt. */
  constructor(
    floor: bigint,
    private readonly nowNs: () => bigint = wallClockNs(),
    salt: bigint = BigInt(randomInt(Number(SLOT))),
  ) {
    if (salt < 0n || salt >= SLOT) throw new RangeError(`serial salt ${salt} is outside 0..${SLOT - 1n}`);
    this.salt = salt;
    this.last = floor;
  }

  next(): bigint {
    let s = (this.nowNs() & ~(SLOT - 1n)) | this.salt;
    // The next slot of this salt above the last one (or above the store's largest serial).
    if (s <= this.last) s = (((this.last >> SALT_BITS) + 1n) << SALT_BITS) | this.salt;
    if (s >= 1n << 63n) throw new RangeError('serial space exhausted (2^63)');
    this.last = s;
    return s;
  }

  /** Raises the floor (after a serial another server took): later serials are above it. */
  raiseFloor(floor: bigint): void {
    if (floor > this.last) this.last = floor;
  }
}

function wallClockNs(): () => bigint {
  // Date.now() gives the epoch, hrtime the nanoseconds; anchor one to the other once.
  const anchor = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => anchor + process.hrtime.bigint();
}
