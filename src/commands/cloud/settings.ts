import { Option } from 'clipanion';
import { ClientCommand } from '../client-base.js';

export class CloudSettingsCommand extends ClientCommand {
  static override paths = [['cloud', 'settings']];
  static override usesCertsDir = false;
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: 'show the MQTT broker devices are told to use (GET /ccs)',
    examples: [['Show the hub and port', '$0 cloud settings --hostname localhost']],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const client = this.client({ kind: 'bootstrap' });
    try {
      const r = await client.cloudSettings(this.wireFormat());
      if (r.kind !== 'ccs') return 1;
      if (this.json) this.printJson({ hubname: r.hubname, port: r.port });
      else this.print(`hub ${r.hubname || '(none set)'} (${r.hubname ? `${r.hubname}.azure-devices.net` : 'set [server] hubname'}), MQTT port ${r.port}`);
      return 0;
    } finally {
      client.close();
    }
  }
}
