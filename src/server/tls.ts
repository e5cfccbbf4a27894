import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { toPem } from '../asn1/pem.js';
import type { Authority } from '../ca/authority.js';
import type { Logger } from '../log.js';

/**
 * The TLS material both listeners share: the server credential, the CA as the only trust
 * anchor for client certificates, and the CA's current CRL, so a revoked certificate fails the
 * handshake. The CRL is rebuilt after revocations (within a second) and twice a day (it must
 * never pass its nextUpdate, or OpenSSL would refuse every client).
 */
export class TlsMaterial {
  private crlPem: string;
  private listeners: ((o: SecureContextOptions) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly key: string,
    private readonly cert: string,
    private readonly ca: string,
    crlPem: string,
  ) {
    this.crlPem = crlPem;
  }

  static async create(key: string, cert: string, ca: string, authority: Authority, log: Logger): Promise<TlsMaterial> {
    const m = new TlsMaterial(key, cert, ca, toPem('X509 CRL', await authority.crl()));
    let refreshing: Promise<void> | undefined;
    let again = false;
    let last = 0;
    const refresh = async () => {
      // Coalesce bursts: one rebuild at a time, at most one a second. Every TLS context made
      // holds the whole CRL in native memory until the garbage collector finds it, so a context
      // per revocation would grow memory under a stream of revocations. Until the new context is
      // in place, the API still refuses a revoked certificate on every request (403).
      if (refreshing) {
        again = true;
        return refreshing;
      }
      refreshing = (async () => {
        do {
          again = false;
          const wait = last + 1000 - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
          last = Date.now();
          try {
            m.crlPem = toPem('X509 CRL', await authority.crl());
            for (const l of m.listeners) l(m.options());
          } catch (e) {
            log.error(`could not rebuild the CRL: ${(e as Error).message}`);
          }
        } while (again);
      })().finally(() => (refreshing = undefined));
      return refreshing;
    };
    authority.onRevocation(() => void refresh());
    m.timer = setInterval(() => void refresh(), 12 * 3600_000);
    m.timer.unref();
    return m;
  }

  options(): TlsOptions {
    return {
      key: this.key,
      cert: this.cert,
      ca: this.ca,
      crl: this.crlPem,
      requestCert: true,
      rejectUnauthorized: true,
      // API.md: TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 must work.
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
    };
  }

  onChange(listener: (o: SecureContextOptions) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
