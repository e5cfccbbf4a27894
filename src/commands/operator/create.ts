import { Option } from 'clipanion';
import { makeOperator } from '../../ca/setup.js';
import { BaseCommand, positiveInt } from '../base.js';

export class OperatorCreateCommand extends BaseCommand {
  static override paths = [['operator', 'create']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'create an operator client credential',
    details: `
      Creates \`OPERATOR-<name>.key\` and \`OPERATOR-<name>.crt\` (OU \`LinaroCA Operator Cert\`, clientAuth),
      signed by the CA. An operator may enrol devices, read any status and revoke any certificate.
    `,
    examples: [['Create a credential for the operator "alice"', '$0 operator create alice']],
  });

  name = Option.String({ name: 'name' });
  days = Option.String('--days', { description: 'Validity in days (default 365)' });

  protected async run(): Promise<void> {
    const written = await makeOperator({ certs: this.certsDir(), name: this.name, days: positiveInt(this.days, '--days'), now: new Date() });
    for (const p of written) this.print(`wrote ${p}`);
  }
}
