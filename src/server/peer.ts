import type { TLSSocket } from 'node:tls';
import type { PeerCertificate } from '../ca/authority.js';
import { LitebootError } from '../errors.js';

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** What the authority needs of the verified client certificate on a TLS socket. */
export function peerCertificate(socket: TLSSocket): PeerCertificate {
  const c = socket.getPeerCertificate();
  if (!c || !c.serialNumber) throw new LitebootError('FORBIDDEN', 'a client certificate is required');
  const subject = (c.subject ?? {}) as unknown as Record<string, string | string[] | undefined>;
  return {
    serial: BigInt('0x' + c.serialNumber),
    cn: list(subject.CN)[0] ?? '',
    ous: list(subject.OU),
    notAfter: new Date(c.valid_to),
    der: c.raw,
  };
}
