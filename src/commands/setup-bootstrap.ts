import { Option } from 'clipanion';
import { renewBootstrap, setupBootstrap, type RenewedCredential } from '../ca/setup.js';
import { BaseCommand, positiveInt, usage } from './base.js';
import { CaCommand } from './ca-password.js';
import { resolveDbLocation } from './locations.js';
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
      is recorded in the database (\`--db\`, else \`CADB.db\` beside the certs directory) so that it can
      be revoked by serial.

      \`--renew\` (with \`--name\` for a rotation's credential) makes a new certificate for the SAME key,
      e.g. before it expires: the key is in every device's flash, so only \`BOOTSTRAP.crt\` and
      \`bootstrap_crt.txt\` change (the old ones are kept as \`*.<time>.bak\`) and \`bootstrap_key.txt\`
      stays. The old certificate stays valid until an operator revokes it. A new key is a new
      credential: \`--name\`.
    `,
    examples: [
      ['Create the bootstrap credential in ./certs', '$0 setup-bootstrap'],
      ['A second credential for a new production batch', '$0 setup-bootstrap --name batch2'],
      ['Use another certs directory', '$0 setup-bootstrap --certs /etc/liteboot/certs'],
      ['Renew the certificate of BOOTSTRAP.key', '$0 setup-bootstrap --renew'],
    ],
  });

  days = Option.String('--days', { description: 'Validity in days (default 3650, never beyond the CA)' });
  keyType = Option.String('--key-type', 'p256', { description: 'p256 or p384' });
  name = Option.String('--name', { description: 'Make another credential, BOOTSTRAP-NAME.* (rotation)' });
  db = Option.String('--db', { description: 'The database to record the credential in (default: CADB.db beside the certs directory)' });
  renew = Option.Boolean('--renew', false, { description: 'A new certificate for the existing key (same subject); the old one stays valid until revoked' });
  json = Option.Boolean('--json', false, { description: 'Print what was made as JSON' });

  protected async run(): Promise<void> {
    const common = { certs: this.certsDir(), name: this.name, days: positiveInt(this.days, '--days'), now: new Date() };
    if (this.renew) {
      if (this.keyType !== 'p256') throw usage('--renew keeps the key, so --key-type does not apply; make a new credential with --name NAME --key-type TYPE');
      const made = await renewBootstrap({ ...common, caPassphrase: await this.caPassword() });
      return reportRenewal({ print: (l) => this.print(l), printJson: (v) => this.printJson(v) }, made, await recordNewCredential(made, resolveDbLocation(this.certs, this.db)), this.json);
    }
    const made = await setupBootstrap({ ...common, caPassphrase: await this.caPassword(), keyAlgorithm: keyAlgorithm(this.keyType) });
    const recorded = await recordNewCredential(made, resolveDbLocation(this.certs, this.db));
    if (this.json) return this.printJson({ written: made.written, kind: made.kind, name: made.cn, serial: made.serial, recorded });
    for (const p of made.written) this.print(`wrote ${p}`);
    this.print(recorded);
  }
}

/** What a renewal says: files written, backups, and that the old certificate is still valid. */
export function reportRenewal(c: { print(line: string): void; printJson(v: unknown): void }, made: RenewedCredential, recorded: string, json: boolean): void {
  const revoke = `liteboot cert revoke ${made.oldSerial} --operator NAME`;
  if (json) {
    c.printJson({ written: made.written, backups: made.backups.map(([file, backup]) => ({ file, backup })), kind: made.kind, name: made.cn, serial: made.serial, oldSerial: made.oldSerial, oldStillValid: true, recorded });
    return;
  }
  for (const [file, backup] of made.backups) c.print(`kept the old ${file} as ${backup}`);
  for (const p of made.written) c.print(`wrote ${p}`);
  c.print(recorded);
  c.print(`the old certificate (serial ${made.oldSerial}) stays valid until revoked: ${revoke}`);
}
