import { createServer, type DetailedPeerCertificate, type Server, type TLSSocket } from 'node:tls';
import { parseCertificate } from '../asn1/certificate.js';
import { formatName } from '../asn1/name.js';
import type { Logger } from '../log.js';
import { listenError } from './api-server.js';
import type { TlsMaterial } from './tls.js';

/**
 * The mTLS check listener (`mport`): a client whose certificate chains to the CA and is not
 * revoked completes the handshake; its chain is logged and the connection closed. Anything else
 * is refused in the handshake with an alert.
 */
export class MtlsListener {
  readonly server: Server;

  constructor(tls: TlsMaterial, private readonly log: Logger, handshakeTimeoutMs: number) {
    this.server = createServer({ ...tls.options(), handshakeTimeout: handshakeTimeoutMs }, (socket) => this.accepted(socket));
    this.server.on('tlsClientError', (err, socket) => {
      this.log.info(`mtls: handshake from ${socket.remoteAddress}:${socket.remotePort} refused: ${err.message}`);
    });
    tls.onChange((opts) => this.server.setSecureContext(opts));
  }

  private accepted(socket: TLSSocket): void {
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
    socket.on('error', () => {});
    socket.end();
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => reject(listenError(e, port, 'mTLS listener'));
      this.server.once('error', onError);
      this.server.listen({ port, host: host || undefined }, () => {
        this.server.off('error', onError);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}
