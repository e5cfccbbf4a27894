import { Option } from 'clipanion';
import { makeOperator } from '../../ca/setup.js';
import { BaseCommand, positiveInt } from '../base.js';
import { CaCommand } from '../ca-password.js';
import { resolveDbLocation } from '../locations.js';
import { recordNewCredential } from '../record-credential.js';

export class OperatorCreateCommand extends CaCommand {
  static override paths = [['operator', 'create']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'create an operator client credential',
    details: `
      Creates \`OPERATOR-<name>.key\` and \`OPERATOR-<name>.crt\` (OU \`LinaroCA Operator Cert\`, clientAuth),
      signed by the CA, and records it in the database (\`--db\`, else \`CADB.db\` beside the certs
      directory). An operator may enrol devices, read any
      status and revoke any certificate, bootstrap and operator credentials included.
    `,
    examples: [['Create a credential for the operator "alice"', '$0 operator create alice']],
  });

  name = Option.String({ name: 'name' });
  days = Option.String('--days', { description: 'Validity in days (default 365)' });
  db = Option.String('--db', { description: 'The database to record the credential in (default: CADB.db beside the certs directory)' });
  json = Option.Boolean('--json', false, { description: 'Print what was made as JSON' });

  protected async run(): Promise<void> {
    const made = await makeOperator({ certs: this.certsDir(), caPassphrase: await this.caPassword(), name: this.name, days: positiveInt(this.days, '--days'), now: new Date() });
    const recorded = await recordNewCredential(made, resolveDbLocation(this.certs, this.db));
    if (this.json) return this.printJson({ written: made.written, kind: made.kind, name: made.cn, serial: made.serial, recorded });
    for (const p of made.written) this.print(`wrote ${p}`);
    this.print(recorded);
  }
}
