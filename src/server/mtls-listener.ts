import { createServer, type DetailedPeerCertificate, type Server, type TLSSocket } from 'node:tls';
import { parseCertificate } from '../asn1/certificate.js';
import { formatName } from '../asn1/name.js';
import type { Logger } from '../log.js';
import { listenOn } from './api-server.js';
import type { TlsOptions } from 'node:tls';
import type { Authority } from '../ca/authority.js';
import type { ServerConfig } from '../config.js';
import { ConnectionGuard } from './connection-guard.js';

/**
 * The mTLS check listener (`mport`): a client whose certificate chains to the CA and is not
 * revoked is logged with its chain and the connection closed; anything else is refused and
 * logged with the reason.
 *
 * Node.js verifies client certificates but never fails the handshake for a bad one (its OpenSSL
 * verify callback always continues, nodejs/node#20737): a rejected client sees the connection
 * closed right after the handshake, before any data, rather than a TLS alert. Only a missing
 * certificate gets an alert. Chain verification is OpenSSL's; revocation is the authority's.
 */
export class MtlsListener {
  readonly server: Server;
  private readonly closeWithinMs: number;

  constructor(tls: TlsOptions, private readonly authority: Authority, private readonly log: Logger, limits: ServerConfig['limits']) {
    // Checked here rather than by Node's rejectUnauthorized so that the reason can be logged.
    this.server = createServer({ ...tls, rejectUnauthorized: false }, (socket) => this.accepted(socket));
    // The same cap as the REST API's, counted apart: a flood of one port leaves the other serving.
    this.server.maxConnections = limits.maxConnections;
    // handshake_timeout is the guard's, counted from accept (Node's own 120 s stays behind it).
    new ConnectionGuard(this.server, { name: 'mtls', handshakeTimeoutMs: limits.handshakeTimeoutMs, maxPerAddress: limits.maxConnectionsPerAddress, log });
    this.closeWithinMs = limits.handshakeTimeoutMs;
    this.server.on('tlsClientError', (err, socket) => {
      // A socket already destroyed has forgotten its peer; the guard's error remembers it.
      const from = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : ((err as { peer?: string }).peer ?? 'an unknown peer');
      this.log.info(`mtls: handshake from ${from} refused: ${err.message}`);
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
      socket.destroy();
      return;
    }
    const parts: string[] = [];
    let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
    for (let i = 0; c && c.raw && i < 8; i++) {
      try {
        const p = parseCertificate(c.raw);
        parts.push(`[${i}] subject="${formatName(p.subject)}" serial=${p.serial}`);
      } catch {
        parts.push(`[${i}] (unparsable certificate)`);
      }
      if (c.issuerCertificate === c) break; // self-signed root ends the chain
      c = c.issuerCertificate;
    }
    this.log.info(`mtls: connection accepted from ${socket.remoteAddress}:${socket.remotePort} ${parts.join(' ')}`);
    socket.end();
    // end() waits for the client to close its side; one that never does is not waited for long.
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
