import { createServer, type DetailedPeerCertificate, type Server, type TLSSocket } from 'node:tls';
import { parseCertificate } from '../asn1/certificate.js';
import { formatName } from '../asn1/name.js';
import type { Logger } from '../log.js';
import { listenOn } from './api-server.js';
import type { TlsOptions } from 'node:tls';
import type { Authority } from '../ca/authority.js';

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

  constructor(tls: TlsOptions, private readonly authority: Authority, private readonly log: Logger, handshakeTimeoutMs: number) {
    // Checked here rather than by Node's rejectUnauthorized so that the reason can be logged.
    this.server = createServer({ ...tls, rejectUnauthorized: false, handshakeTimeout: handshakeTimeoutMs }, (socket) => this.accepted(socket));
    this.server.on('tlsClientError', (err, socket) => {
      this.log.info(`mtls: handshake from ${socket.remoteAddress}:${socket.remotePort} refused: ${err.message}`);
      // Node only reports a handshake timeout (no ClientHello ever came): the connection is ours to close.
      if ((err as NodeJS.ErrnoException).code === 'ERR_TLS_HANDSHAKE_TIMEOUT') socket.destroy();
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
  }

  listen(port: number, host: string): Promise<number> {
    return listenOn(this.server, port, host, 'mTLS listener');
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}
