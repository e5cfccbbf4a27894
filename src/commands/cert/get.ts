import { writeFileSync } from 'node:fs';
import { Option } from 'clipanion';
import { LitebootError } from '../../errors.js';
import { fsErrorMessage } from '../base.js';
import { ClientCommand, serialArg } from '../client-base.js';

export class CertGetCommand extends ClientCommand {
  static override paths = [['cert', 'get']];
  static override usesCertsDir = false;
  static override usage = ClientCommand.Usage({
    category: 'Certificates',
    description: 'fetch a copy of a certificate as PEM (GET /cc)',
    examples: [
      ['Print a certificate', '$0 cert get 1795721654822870144 --hostname localhost'],
      ['Save it', '$0 cert get 1795721654822870144 -o device.crt'],
      ['For a script', "$0 cert get 1795721654822870144 --json | jq -r .certificate"],
    ],
  });

  serial = Option.String({ name: 'serial' });
  output = Option.String('-o,--output', { description: 'Write the PEM to this file instead of standard output' });
  json = Option.Boolean('--json', false, { description: 'Print {"serial","certificate"} (with -o: {"serial","file"})' });

  protected async run(): Promise<number> {
    const serial = serialArg(this.serial);
    const client = this.client({ kind: 'bootstrap' });
    try {
      const r = await client.certCopy(serial, this.wireFormat());
      if (r.kind !== 'cc') return 1;
      if (this.output) {
        try {
          writeFileSync(this.output, r.pem);
        } catch (e) {
          throw new LitebootError('FILE_UNREADABLE', fsErrorMessage(e, this.output, 'write') ?? `cannot write ${this.output}`, { cause: e });
        }
        if (this.json) this.printJson({ serial, file: this.output });
      } else if (this.json) this.printJson({ serial, certificate: r.pem });
      else this.context.stdout.write(r.pem);
      return 0;
    } finally {
      client.close();
    }
  }
}
