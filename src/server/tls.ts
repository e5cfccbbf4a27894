import type { TlsOptions } from 'node:tls';

/**
 * The TLS options both listeners share: the server credential and the CA as the only trust
 * anchor for client certificates; TLS 1.2 and 1.3 only.
 *
 * Revocation is checked by the listeners right after the handshake (Authority.isRevoked), not by
 * a CRL in this context: Node never fails a handshake for a client certificate anyway (its
 * OpenSSL verify callback always continues, nodejs/node#20737; it closes the connection after
 * the handshake), and a new context per revocation holds the whole CRL in native memory until the
 * garbage collector finds it, which grew memory without bound under a stream of revocations.
 */
/**
 * TLS 1.3: Node's default suites. TLS 1.2: ECDHE-ECDSA (the server key is EC) with an AEAD only,
 * no CBC-SHA1/SHA2 suites (Lucky 13 and kin); ECDHE-ECDSA-AES128-GCM-SHA256 is what the devices use.
 */
export const CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
].join(':');

export function tlsOptions(key: string, cert: string, ca: string): TlsOptions {
  return {
    key,
    cert,
    ca,
    requestCert: true,
    rejectUnauthorized: true,
    // API.md: TLS 1.2 and 1.3 only; TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 must work.
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: CIPHERS,
  };
}
