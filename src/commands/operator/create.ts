import { Option } from 'clipanion';
import { makeOperator } from '../../ca/setup.js';
import { BaseCommand, positiveInt } from '../base.js';
import { CaCommand } from '../ca-password.js';
import { recordNewCredential } from '../record-credential.js';

export class OperatorCreateCommand extends CaCommand {
  static override paths = [['operator', 'create']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'create an operator client credential',
    details: `
      Creates \`OPERATOR-<name>.key\` and \`OPERATOR-<name>.crt\` (OU \`LinaroCA Operator Cert\`, clientAuth),
      signed by the CA, and records it in the database (\`--db\`). An operator may enrol devices, read any
      status and revoke any certificate, bootstrap and operator credentials included.
    `,
    examples: [['Create a credential for the operator "alice"', '$0 operator create alice']],
  });

  name = Option.String({ name: 'name' });
  days = Option.String('--days', { description: 'Validity in days (default 365)' });
  db = Option.String('--db', 'CADB.db', { description: 'The database to record the credential in' });

  protected async run(): Promise<void> {
    const made = await makeOperator({ certs: this.certsDir(), caPassphrase: await this.caPassword(), name: this.name, days: positiveInt(this.days, '--days'), now: new Date() });
    for (const p of made.written) this.print(`wrote ${p}`);
    this.print(await recordNewCredential(made, this.db));
  }
}
