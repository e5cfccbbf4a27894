import { Option } from 'clipanion';
import { responseAsJson } from '../../protocol/responses.js';
import { ClientCommand, serialArg } from '../client-base.js';

export class CertStatusCommand extends ClientCommand {
  static override paths = [['cert', 'status']];
  static override usage = ClientCommand.Usage({
    category: 'Certificates',
    description: 'ask whether a certificate is valid or revoked (GET /cs)',
    details: 'Exit status 0 when the certificate is valid, 3 when it is revoked, 1 on an error (an unknown serial included).',
    examples: [['Check a serial', '$0 cert status 1795721654822870144 --hostname localhost']],
  });

  serial = Option.String({ name: 'serial' });
  json = Option.Boolean('--json', false, { description: 'Print the server\'s JSON' });

  protected async run(): Promise<number> {
    const serial = serialArg(this.serial);
    const client = this.client({ kind: 'bootstrap' });
    try {
      const r = await client.certStatus(serial, this.wireFormat());
      if (r.kind !== 'cs') return 1;
      this.print(this.json ? responseAsJson(r) : `${serial}: ${r.status === 1 ? 'valid' : 'revoked'}`);
      return r.status === 1 ? 0 : 3;
    } finally {
      client.close();
    }
  }
}
