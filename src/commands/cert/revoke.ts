import { Option } from 'clipanion';
import { parseCertificate } from '../../asn1/certificate.js';
import { parsePemBlocks } from '../../asn1/pem.js';
import { LitebootError } from '../../errors.js';
import { canonicalUuid } from '../../ca/uuid.js';
import { parseReason, readUserFile, usage } from '../base.js';
import { ClientCommand, serialArg, type Credential } from '../client-base.js';

export class CertRevokeCommand extends ClientCommand {
  static override paths = [['cert', 'revoke']];
  static override usage = ClientCommand.Usage({
    category: 'Certificates',
    description: 'revoke a certificate (POST /krr)',
    details: `
      Authenticates as an operator (\`--operator NAME\`: \`certs/OPERATOR-NAME.crt\`), who may revoke any
      certificate, or as a device (\`--device UUID\`: \`certs/<uuid>.crt\`), which may revoke only its
      own. \`--reason\` is an RFC 5280 CRLReason, by name or code: unspecified (0), keyCompromise
      (1), cACompromise (2), affiliationChanged (3), superseded (4), cessationOfOperation (5),
      certificateHold (6), privilegeWithdrawn (9), aACompromise (10).

      An operator can also revoke a bootstrap or operator credential (a leaked bootstrap key, a
      departed operator): by serial, or with \`--cert FILE\` to take the serial from the certificate.
      A revoked credential is refused on both ports.
    `,
    examples: [
      ['An operator revokes a certificate', '$0 cert revoke 1795721654822870144 --operator alice --reason keyCompromise'],
      ['A device revokes one of its own', '$0 cert revoke 1795721654822870144 --device 56d38f73-3f6f-4a59-86bc-d315a1ccc634'],
      ['Cut off a leaked bootstrap credential', '$0 cert revoke --cert certs/BOOTSTRAP.crt --operator alice --reason 1'],
    ],
  });

  serial = Option.String({ name: 'serial', required: false });
  cert = Option.String('--cert', { description: 'Revoke the certificate in FILE (PEM or DER) instead of giving its serial' });
  operator = Option.String('--operator', { description: 'Revoke as this operator' });
  device = Option.String('--device', { description: 'Revoke as this device' });
  reason = Option.String('--reason', { description: 'RFC 5280 CRLReason: a name (keyCompromise, superseded, ...) or its code (default: none)' });

  protected async run(): Promise<number> {
    if ((this.serial === undefined) === (this.cert === undefined)) throw usage('give the serial to revoke, or --cert FILE');
    const serial = this.serial !== undefined ? serialArg(this.serial) : serialOfFile(this.cert!);
    if (!!this.operator === !!this.device) throw usage('say who revokes: --operator NAME or --device UUID');
    const uuid = this.device ? canonicalUuid(this.device) : undefined;
    if (this.device && !uuid) throw usage(`"${this.device}" is not a UUID`);
    const who: Credential = this.operator ? { kind: 'operator', name: this.operator } : { kind: 'device', uuid: uuid! };
    const reason = this.reason === undefined ? 0 : parseReason(this.reason);
    const client = this.client(who);
    try {
      await client.revoke(serial, reason, this.wireFormat());
      this.print(`revoked ${serial}`);
      return 0;
    } finally {
      client.close();
    }
  }
}

function serialOfFile(path: string): bigint {
  const bytes = readUserFile(path);
  const text = bytes.toString('latin1');
  const der = text.includes('-----BEGIN') ? parsePemBlocks(text).find((b) => b.label === 'CERTIFICATE')?.der : bytes;
  if (!der) throw new LitebootError('BAD_CERT', `${path} holds no certificate`);
  try {
    return parseCertificate(der).serial;
  } catch {
    throw new LitebootError('BAD_CERT', `${path} is not a certificate (PEM/DER) liteboot can read`);
  }
}
