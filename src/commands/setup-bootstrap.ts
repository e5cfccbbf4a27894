import { Option } from 'clipanion';
import { setupBootstrap } from '../ca/setup.js';
import { BaseCommand, positiveInt } from './base.js';
import { CaCommand } from './ca-password.js';
import { recordNewCredential } from './record-credential.js';
import { keyAlgorithm } from './setup-ca.js';

export class SetupBootstrapCommand extends CaCommand {
  static override paths = [['setup-bootstrap']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'create the shared bootstrap client credential',
    details: `
      Creates \`BOOTSTRAP.key\` and \`BOOTSTRAP.crt\` (OU \`LinaroCA Bootstrap Cert\`, clientAuth), signed by
      the CA, plus \`bootstrap_crt.txt\` (the certificate as C strings) and \`bootstrap_key.txt\` (the
      key's DER as \`xxd -i\` prints it) for firmware builds. Needs \`setup-ca\` first; refuses to
      overwrite.

      The bootstrap key ends up in every device's firmware, so treat it as public. To rotate it (a
      new production batch), \`--name NAME\` makes another credential, \`BOOTSTRAP-NAME.crt\`/\`.key\`
      (CN \`bootstrap-NAME\`) and \`bootstrap-NAME_crt.txt\`/\`bootstrap-NAME_key.txt\`; the old one stays
      valid until an operator revokes it (\`liteboot cert revoke SERIAL --operator NAME\`). The credential
      is recorded in the database (\`--db\`) so that it can be revoked by serial.
    `,
    examples: [
      ['Create the bootstrap credential in ./certs', '$0 setup-bootstrap'],
      ['A second credential for a new production batch', '$0 setup-bootstrap --name batch2'],
      ['Use another certs directory', '$0 setup-bootstrap --certs /etc/liteboot/certs'],
    ],
  });

  days = Option.String('--days', { description: 'Validity in days (default 3650, never beyond the CA)' });
  keyType = Option.String('--key-type', 'p256', { description: 'p256 or p384' });
  name = Option.String('--name', { description: 'Make another credential, BOOTSTRAP-NAME.* (rotation)' });
  db = Option.String('--db', 'CADB.db', { description: 'The database to record the credential in' });

  protected async run(): Promise<void> {
    const made = await setupBootstrap({
      certs: this.certsDir(),
      caPassphrase: await this.caPassword(),
      name: this.name,
      days: positiveInt(this.days, '--days'),
      keyAlgorithm: keyAlgorithm(this.keyType),
      now: new Date(),
    });
    for (const p of made.written) this.print(`wrote ${p}`);
    this.print(await recordNewCredential(made, this.db));
  }
}
