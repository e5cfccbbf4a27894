import { Option } from 'clipanion';
import { makeOcspResponder } from '../ca/setup.js';
import { BaseCommand, positiveInt } from './base.js';
import { CaCommand } from './ca-password.js';

export class SetupOcspCommand extends CaCommand {
  static override paths = [['setup-ocsp']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'create a delegated OCSP responder certificate',
    details: `
      Creates \`OCSP.key\` and \`OCSP.crt\` (EKU OCSPSigning and id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2),
      signed by the CA, so that OCSP responses are signed without the CA key:
      \`[server] ocsp_signer = "delegated"\`. With ocsp-nocheck, clients never ask whether the responder
      itself was revoked, so keep it short-lived (\`--days\`, default 30) and make a new one in time.
      Works for a CA made by the Go tool too. Refuses to overwrite.
    `,
    examples: [
      ['A responder certificate for 30 days', '$0 setup-ocsp'],
      ['Renew it', 'rm certs/OCSP.crt certs/OCSP.key && $0 setup-ocsp --days 30'],
    ],
  });

  days = Option.String('--days', { description: 'Validity in days (default 30)' });
  json = Option.Boolean('--json', false, { description: 'Print what was made as JSON' });

  protected async run(): Promise<void> {
    const made = await makeOcspResponder({ certs: this.certsDir(), caPassphrase: await this.caPassword(), days: positiveInt(this.days, '--days'), now: new Date() });
    if (this.json) return this.printJson({ written: made.written, serial: made.serial });
    for (const p of made.written) this.print(`wrote ${p}`);
  }
}
