import { createServer, type DetailedPeerCertificate, type Server, type TLSSocket } from 'node:tls';
import { parseCertificate } from '../asn1/certificate.js';
import { formatName } from '../asn1/name.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type Metrics } from '../metrics.js';
import { listenOn } from './api-server.js';
import type { TlsOptions } from 'node:tls';
import type { Authority } from '../ca/authority.js';
import type { ServerConfig } from '../config.js';
import { ConnectionGuard, handshakeRefusal } from './connection-guard.js';

/**
 * Verdicts in our own words for the verify results a client can cause (the reason is written to
 * the client, so no library text is passed through).
 */
const REASONS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to verify the first certificate',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in the chain',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CERT_REJECTED: 'certificate rejected',
  INVALID_PURPOSE: 'certificate not for client authentication',
};

/**
 * The mTLS check listener (`mport`), whose only job is to tell a person whether a certificate
 * works: after the handshake it writes one line, `OK serial=<decimal> subject=<RFC 4514>` for a
 * certificate that chains to the CA and is not revoked, or `REFUSED <reason>`, then closes with
 * close_notify; the log line says the same with the chain.
 *
 * Node.js verifies client certificates but never fails the handshake for a bad one (its OpenSSL
 * verify callback always continues, nodejs/node#20737), so the verdict goes in the data instead
 * of a TLS alert. Chain verification is OpenSSL's; revocation is the authority's.
 */
export class MtlsListener {
  readonly server: Server;
  private readonly closeWithinMs: number;

  constructor(tls: TlsOptions, private readonly authority: Authority, private readonly log: Logger, limits: ServerConfig['limits'], private readonly metrics: Metrics = NO_METRICS) {
    // Checked here rather than by Node's rejectUnauthorized so that the reason can be logged.
    this.server = createServer({ ...tls, rejectUnauthorized: false }, (socket) => this.accepted(socket));
    // The same cap as the REST API's, counted apart: a flood of one port leaves the other serving.
    this.server.maxConnections = limits.maxConnections;
    // handshake_timeout is the guard's, counted from accept (Node's own 120 s stays behind it).
    new ConnectionGuard(this.server, { name: 'mtls', handshakeTimeoutMs: limits.handshakeTimeoutMs, maxPerAddress: limits.maxConnectionsPerAddress, log, metrics });
    this.closeWithinMs = limits.handshakeTimeoutMs;
    this.server.on('tlsClientError', (err, socket) => {
      // A socket already destroyed has forgotten its peer; the guard's error remembers it.
      const from = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : ((err as { peer?: string }).peer ?? 'an unknown peer');
      this.log.info(`mtls: handshake from ${from} refused: ${err.message}`);
      this.metrics.tlsRefused('mtls', handshakeRefusal(err));
      // Node reports a handshake error or timeout here and leaves the socket to us.
      socket.destroy();
    });
  }

  private accepted(socket: TLSSocket): void {
    socket.on('error', () => {});
    const peer = socket.getPeerCertificate();
    const revoked = socket.authorized && peer?.serialNumber !== undefined && this.authority.isRevoked(BigInt('0x' + peer.serialNumber));
    if (!socket.authorized || revoked) {
      const who = peer && peer.subject ? ` (certificate ${Object.entries(peer.subject).map(([k, v]) => `${k}=${String(v)}`).join(',')})` : '';
      this.log.info(`mtls: connection from ${socket.remoteAddress}:${socket.remotePort} refused: ${revoked ? 'CERT_REVOKED' : String(socket.authorizationError)}${who}`);
      this.metrics.tlsRefused('mtls', revoked ? 'revoked' : 'verify_failed');
      const code = (socket.authorizationError as unknown as { code?: string } | undefined)?.code ?? String(socket.authorizationError);
      const reason = !peer || !peer.raw ? 'no client certificate' : revoked ? 'certificate revoked' : (REASONS[code] ?? 'certificate not accepted');
      this.close(socket, `REFUSED ${reason}\n`);
      return;
    }
    const parts: string[] = [];
    let verdict = 'OK\n';
    let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
    for (let i = 0; c && c.raw && i < 8; i++) {
      try {
        const p = parseCertificate(c.raw);
        parts.push(`[${i}] subject="${formatName(p.subject)}" serial=${p.serial}`);
        // One line whatever an old certificate's subject holds.
        if (i === 0) verdict = `OK serial=${p.serial} subject=${formatName(p.subject).replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`)}\n`;
      } catch {
        parts.push(`[${i}] (unparsable certificate)`);
      }
      if (c.issuerCertificate === c) break; // self-signed root ends the chain
      c = c.issuerCertificate;
    }
    this.log.info(`mtls: connection accepted from ${socket.remoteAddress}:${socket.remotePort} ${parts.join(' ')}`);
    this.close(socket, verdict);
  }

  /** Writes the verdict and closes with close_notify; a client that never closes its side is not waited for long. */
  private close(socket: TLSSocket, verdict: string): void {
    // Not from inside the 'secureConnection' callback: ending there closes the TCP connection
    // without a close_notify (openssl s_client: "unexpected eof while reading", exit 1).
    setImmediate(() => socket.end(verdict));
    const timer = setTimeout(() => socket.destroy(), this.closeWithinMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host, 'mTLS listener');
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}
