import { Option } from 'clipanion';
import { canonicalUuid } from '../../ca/uuid.js';
import { positiveInt, usage } from '../base.js';
import { ClientCommand, serialArg, type Credential } from '../client-base.js';

export class CertRevokeCommand extends ClientCommand {
  static override paths = [['cert', 'revoke']];
  static override usage = ClientCommand.Usage({
    category: 'Certificates',
    description: 'revoke a certificate (POST /krr)',
    details: `
      Authenticates as an operator (\`--operator NAME\`: \`certs/OPERATOR-NAME.crt\`), who may revoke any
      certificate, or as a device (\`--device UUID\`: \`certs/<uuid>.crt\`), which may revoke only its
      own. \`--reason\` is an RFC 5280 CRLReason code (1 keyCompromise, 4 superseded, 5
      cessationOfOperation, ...).
    `,
    examples: [
      ['An operator revokes a certificate', '$0 cert revoke 1795721654822870144 --operator alice --reason 1'],
      ['A device revokes one of its own', '$0 cert revoke 1795721654822870144 --device 56d38f73-3f6f-4a59-86bc-d315a1ccc634'],
    ],
  });

  serial = Option.String({ name: 'serial' });
  operator = Option.String('--operator', { description: 'Revoke as this operator' });
  device = Option.String('--device', { description: 'Revoke as this device' });
  reason = Option.String('--reason', { description: 'RFC 5280 CRLReason code (default: none)' });

  protected async run(): Promise<number> {
    const serial = serialArg(this.serial);
    if (!!this.operator === !!this.device) throw usage('say who revokes: --operator NAME or --device UUID');
    const uuid = this.device ? canonicalUuid(this.device) : undefined;
    if (this.device && !uuid) throw usage(`"${this.device}" is not a UUID`);
    const who: Credential = this.operator ? { kind: 'operator', name: this.operator } : { kind: 'device', uuid: uuid! };
    const reason = this.reason === undefined ? 0 : this.reason === '0' ? 0 : positiveInt(this.reason, '--reason')!;
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
