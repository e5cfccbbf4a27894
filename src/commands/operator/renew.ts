import { Option } from 'clipanion';
import { renewOperator } from '../../ca/setup.js';
import { BaseCommand, positiveInt } from '../base.js';
import { CaCommand } from '../ca-password.js';
import { resolveDbLocation } from '../locations.js';
import { recordNewCredential } from '../record-credential.js';
import { reportRenewal } from '../setup-bootstrap.js';

export class OperatorRenewCommand extends CaCommand {
  static override paths = [['operator', 'renew']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'renew an operator credential (a new key and certificate)',
    details: `
      Replaces \`OPERATOR-<name>.key\` and \`OPERATOR-<name>.crt\` with a new key and a certificate with the
      same subject, signed by the CA, and records it in the database (\`--db\`, else \`CADB.db\` beside the
      certs directory). The old files are kept as \`OPERATOR-<name>.*.<time>.bak\`. The old certificate
      stays valid until it is revoked (\`liteboot cert revoke SERIAL --operator NAME\`): revoke it once
      the operator uses the new one.
    `,
    examples: [['Renew the credential of the operator "alice"', '$0 operator renew alice']],
  });

  name = Option.String({ name: 'name' });
  days = Option.String('--days', { description: 'Validity in days (default 365)' });
  db = Option.String('--db', { description: 'The database to record the credential in (default: CADB.db beside the certs directory)' });
  json = Option.Boolean('--json', false, { description: 'Print what was made as JSON' });

  protected async run(): Promise<void> {
    const made = await renewOperator({ certs: this.certsDir(), caPassphrase: await this.caPassword(), name: this.name, days: positiveInt(this.days, '--days'), now: new Date() });
    reportRenewal({ print: (l) => this.print(l), printJson: (v) => this.printJson(v) }, made, await recordNewCredential(made, resolveDbLocation(this.certs, this.db)), this.json);
  }
}
