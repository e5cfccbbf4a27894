/**
 * A cloud service devices are registered with. `register` resolves when the service has the
 * device (a device it already had counts); it throws a RegistrationError otherwise.
 */
export interface DeviceToRegister {
  deviceId: string;
  serial: bigint;
  /** PEM of the device's newest valid certificate. */
  certificatePem: string;
  issuedAt: Date;
}

export interface Provider {
  readonly name: string;
  register(device: DeviceToRegister, signal: AbortSignal): Promise<void>;
}

export class RegistrationError extends Error {
  constructor(
    message: string,
    /** Retrying cannot help (the service rejected the request itself): give up until an operator retries. */
    readonly permanent = false,
    /** The service asked for this delay (HTTP 429 Retry-After), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RegistrationError';
  }
}

/** Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
