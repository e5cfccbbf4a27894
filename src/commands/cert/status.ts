import { Option } from 'clipanion';
import { isLitebootError } from '../../errors.js';
import { listArgs, usage, withoutErrno } from '../base.js';
import { ClientCommand, serialArg } from '../client-base.js';

export class CertStatusCommand extends ClientCommand {
  static override paths = [['cert', 'status']];
  static override usesCertsDir = false;
  static override usage = ClientCommand.Usage({
    category: 'Certificates',
    description: 'ask whether certificates are valid or revoked (GET /cs)',
    details: `
      Takes one or more decimal serials; \`-\` reads more from standard input, one a line. Exit status
      0 when every certificate is valid, 3 when one is revoked, 1 on an error (an unknown serial
      included; the others are still checked).

      \`--json\` prints \`{"serial":"<decimal>","status":"valid"|"revoked"}\` for one serial, an array
      of them for several or \`-\` (an unknown serial: \`{"serial":...,"error":"..."}\`).
    `,
    examples: [
      ['Check a serial', '$0 cert status 1795721654822870144 --hostname localhost'],
      ['Check every serial of a device', "$0 device status 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --json | jq -r '.serials[]' | $0 cert status -"],
    ],
  });

  serials = Option.Rest({ name: 'serial' });
  json = Option.Boolean('--json', false, { description: 'Print JSON (serials as decimal strings)' });

  protected async run(): Promise<number> {
    const texts = listArgs(this.serials);
    if (texts.length === 0) throw usage(this.serials.includes('-') ? 'no serial on standard input' : 'give one or more serials (or - to read them from standard input)');
    const serials = texts.map(serialArg);
    const several = texts.length > 1 || this.serials.includes('-');
    const format = this.wireFormat();
    const client = this.client({ kind: 'bootstrap' });
    const results: { serial: bigint; status?: 'valid' | 'revoked'; error?: string }[] = [];
    try {
      for (const serial of serials) {
        try {
          const r = await client.certStatus(serial, format);
          if (r.kind === 'cs') results.push({ serial, status: r.status === 1 ? 'valid' : 'revoked' });
          else results.push({ serial, error: r.kind === 'error' ? r.error : `unexpected ${r.kind} answer` });
        } catch (e) {
          // One unknown serial does not stop the others; a server that cannot be reached does.
          if (!isLitebootError(e) || e.code !== 'SERVER_REFUSED' || !several) throw e;
          results.push({ serial, error: withoutErrno(e.message) });
        }
      }
    } finally {
      client.close();
    }
    if (this.json) this.printJson(several ? results : results[0]);
    else {
      for (const r of results) {
        if (r.status) this.print(`${r.serial}: ${r.status}`);
        else this.context.stderr.write(`liteboot: ${r.serial}: ${r.error}\n`);
      }
    }
    return results.some((r) => r.error) ? 1 : results.some((r) => r.status === 'revoked') ? 3 : 0;
  }
}
