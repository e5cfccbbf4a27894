import { homedir } from 'node:os';
import { Option } from 'clipanion';
import { setupServer } from '../ca/setup.js';
import { BaseCommand, positiveInt } from './base.js';
import { CaCommand } from './ca-password.js';
import { serverHostname } from './locations.js';
import { keyAlgorithm, recordHostnameQuietly } from './setup-ca.js';

export class SetupServerCommand extends CaCommand {
  static override paths = [['setup-server']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'reissue the TLS server certificate from the existing CA',
    details: `
      Makes a new \`SERVER.key\` and \`SERVER.crt\` for the hostname, signed by the existing CA: for another
      host name, more names (\`--san\`), or after the files were lost. Existing \`SERVER.crt\`/\`SERVER.key\` are
      kept as \`SERVER.*.<time>.bak\`. Devices keep working: they trust the CA, not this certificate.

      The hostname is the argument, then \`.liteboot.toml\`'s \`hostname\`, then \`$CAHOSTNAME\`, then the
      system host name (the order \`server start\` uses); it is recorded in \`.liteboot.toml\`. A running
      server serves the new certificate after a restart.
    `,
    examples: [
      ['A server certificate for another name', '$0 setup-server ca.example.net'],
      ['With another name and an address', '$0 setup-server ca.example.net --san ca --san 192.0.2.10'],
    ],
  });

  hostname = Option.String({ required: false, name: 'hostname' });
  san = Option.Array('--san', [], { description: 'Another DNS name or IP address for the certificate (repeatable)' });
  org = Option.String('--org', { description: 'Organisation in the subject (default "Linaro, LTD")' });
  days = Option.String('--days', { description: 'Validity in days (default 3650, never beyond the CA)' });
  keyType = Option.String('--key-type', 'p256', { description: 'p256 or p384' });
  config = Option.String('--config', { description: 'Configuration file to read and record the hostname in (default ./.liteboot.toml, then ~/.liteboot.toml)' });
  json = Option.Boolean('--json', false, { description: 'Print what was made as JSON' });

  protected async run(): Promise<void> {
    const hostname = serverHostname(this.hostname, this.config, process.cwd(), homedir(), process.env);
    const certs = this.certsDir();
    const made = await setupServer({
      certs,
      caPassphrase: await this.caPassword(certs),
      hostname,
      sans: this.san,
      org: this.org,
      days: positiveInt(this.days, '--days'),
      keyAlgorithm: keyAlgorithm(this.keyType),
      now: new Date(),
    });
    const recorded = recordHostnameQuietly(this.context.stderr, hostname, this.config);
    if (this.json) {
      return this.printJson({ written: made.written, backups: made.backups.map(([file, backup]) => ({ file, backup })), hostname, sans: this.san, serial: made.serial, hostnameRecordedIn: recorded?.path ?? null });
    }
    for (const [file, backup] of made.backups) this.print(`kept the old ${file} as ${backup}`);
    for (const p of made.written) this.print(`wrote ${p}`);
    if (recorded?.message) this.print(recorded.message);
    this.print(`restart the server to serve it`);
  }
}
