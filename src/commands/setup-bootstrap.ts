import { Option } from 'clipanion';
import { setupBootstrap } from '../ca/setup.js';
import { BaseCommand, positiveInt } from './base.js';
import { keyAlgorithm } from './setup-ca.js';

export class SetupBootstrapCommand extends BaseCommand {
  static override paths = [['setup-bootstrap']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'create the shared bootstrap client credential',
    details: `
      Creates \`BOOTSTRAP.key\` and \`BOOTSTRAP.crt\` (OU \`LinaroCA Bootstrap Cert\`, clientAuth), signed by
      the CA, plus \`bootstrap_crt.txt\` (the certificate as C strings) and \`bootstrap_key.txt\` (the
      key's DER as \`xxd -i\` prints it) for firmware builds. Needs \`setup-ca\` first; refuses to
      overwrite.
    `,
    examples: [
      ['Create the bootstrap credential in ./certs', '$0 setup-bootstrap'],
      ['Use another certs directory', '$0 setup-bootstrap --certs /etc/liteboot/certs'],
    ],
  });

  days = Option.String('--days', { description: 'Validity in days (default 3650, never beyond the CA)' });
  keyType = Option.String('--key-type', 'p256', { description: 'p256 or p384' });

  protected async run(): Promise<void> {
    const written = await setupBootstrap({
      certs: this.certsDir(),
      days: positiveInt(this.days, '--days'),
      keyAlgorithm: keyAlgorithm(this.keyType),
      now: new Date(),
    });
    for (const p of written) this.print(`wrote ${p}`);
  }
}
