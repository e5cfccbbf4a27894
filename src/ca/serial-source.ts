/**
 * Device certificate serials, as the original documents them: a timestamp in nanoseconds
 * (e.g. 1795721654822870144). Strictly increasing, above every serial already in the store,
 * below 2^63 (a positive SQLite INTEGER; RFC 5280 §4.1.2.2 allows up to 20 octets).
 */
export class TimestampSerials {
  private last: bigint;

  /** `nowNs` is injectable so tests can replay; the default is the wall clock at ns resolution. */
  constructor(
    floor: bigint,
    private readonly nowNs: () => bigint = wallClockNs(),
  ) {
    this.last = floor;
  }

  next(): bigint {
    const now = this.nowNs();
    this.last = now > this.last ? now : this.last + 1n;
    if (this.last >= 1n << 63n) throw new RangeError('serial space exhausted (2^63)');
    return this.last;
  }
}

function wallClockNs(): () => bigint {
  // Date.now() gives the epoch, hrtime the nanoseconds; anchor one to the other once.
  const anchor = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return () => anchor + process.hrtime.bigint();
}
