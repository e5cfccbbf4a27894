import { Option } from 'clipanion';
import { canonicalUuid } from '../../ca/uuid.js';
import { responseAsJson } from '../../protocol/responses.js';
import { usage } from '../base.js';
import { ClientCommand } from '../client-base.js';

export class DeviceStatusCommand extends ClientCommand {
  static override paths = [['device', 'status']];
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: 'list a device\'s valid certificate serials (GET /ds)',
    examples: [
      ['Ask about a device', '$0 device status 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --hostname localhost'],
      ['The server\'s JSON, for a script', '$0 device status 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --json'],
    ],
  });

  uuid = Option.String({ name: 'uuid' });
  json = Option.Boolean('--json', false, { description: 'Print the server\'s JSON' });

  protected async run(): Promise<number> {
    if (!canonicalUuid(this.uuid)) throw usage(`"${this.uuid}" is not a UUID`);
    const client = this.client({ kind: 'bootstrap' });
    try {
      const r = await client.deviceStatus(this.uuid, this.wireFormat());
      if (r.kind !== 'ds') return 1;
      if (this.json) this.print(responseAsJson(r));
      else if (!r.serials || r.serials.length === 0) this.print(`${this.uuid}: no valid certificates`);
      else this.print(`${this.uuid}: ${r.serials.length} valid certificate${r.serials.length > 1 ? 's' : ''}: ${r.serials.join(' ')}`);
      return 0;
    } finally {
      client.close();
    }
  }
}
