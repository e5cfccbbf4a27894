import { Option } from 'clipanion';
import { canonicalUuid } from '../../ca/uuid.js';
import { isLitebootError } from '../../errors.js';
import { listArgs, usage, withoutErrno } from '../base.js';
import { ClientCommand } from '../client-base.js';

export class DeviceStatusCommand extends ClientCommand {
  static override paths = [['device', 'status']];
  static override usesCertsDir = false;
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: "list devices' valid certificate serials (GET /ds)",
    details: `
      Takes one or more device ids; \`-\` reads more from standard input, one a line.

      \`--json\` prints \`{"device":"<uuid>","serials":["<decimal>",...]}\` (oldest first; \`[]\` when
      none is valid) for one id, an array of them for several or \`-\`. Serials are strings: they are
      64-bit and jq 1.6 or a JavaScript number would round them.
    `,
    examples: [
      ['Ask about a device', '$0 device status 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --hostname localhost'],
      ["A device's newest serial, for a script", "$0 device status 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --json | jq -r '.serials[-1]'"],
      ['Many devices at once', '$0 device status - --json < devices.txt'],
    ],
  });

  uuids = Option.Rest({ name: 'uuid' });
  json = Option.Boolean('--json', false, { description: 'Print JSON (serials as decimal strings)' });

  protected async run(): Promise<number> {
    const texts = listArgs(this.uuids);
    if (texts.length === 0) throw usage(this.uuids.includes('-') ? 'no device id on standard input' : 'give one or more device UUIDs (or - to read them from standard input)');
    const ids = texts.map((t) => {
      const id = canonicalUuid(t);
      if (!id) throw usage(`"${t}" is not a UUID`);
      return id;
    });
    const several = texts.length > 1 || this.uuids.includes('-');
    const format = this.wireFormat();
    const client = this.client({ kind: 'bootstrap' });
    const results: { device: string; serials?: bigint[]; error?: string }[] = [];
    try {
      for (const device of ids) {
        try {
          const r = await client.deviceStatus(device, format);
          if (r.kind === 'ds') results.push({ device, serials: r.serials ?? [] });
          else results.push({ device, error: r.kind === 'error' ? r.error : `unexpected ${r.kind} answer` });
        } catch (e) {
          if (!isLitebootError(e) || e.code !== 'SERVER_REFUSED' || !several) throw e;
          results.push({ device, error: withoutErrno(e.message) });
        }
      }
    } finally {
      client.close();
    }
    if (this.json) this.printJson(several ? results : results[0]);
    else {
      for (const r of results) {
        if (r.error !== undefined) this.context.stderr.write(`liteboot: ${r.device}: ${r.error}\n`);
        else if (r.serials!.length === 0) this.print(`${r.device}: no valid certificates`);
        else this.print(`${r.device}: ${r.serials!.length} valid certificate${r.serials!.length > 1 ? 's' : ''}: ${r.serials!.join(' ')}`);
      }
    }
    return results.some((r) => r.error !== undefined) ? 1 : 0;
  }
}
