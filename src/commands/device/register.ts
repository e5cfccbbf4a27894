import { Option } from 'clipanion';
import { canonicalUuid } from '../../ca/uuid.js';
import { usage } from '../base.js';
import { ClientCommand } from '../client-base.js';

export class DeviceRegisterCommand extends ClientCommand {
  static override paths = [['device', 'register']];
  static override usesCertsDir = false;
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: 'ask the server to register a device (or every unregistered one) with the cloud now',
    details: 'Registration happens in the background with backoff; this makes the device due at once, including one the server gave up on. Needs an operator credential.',
    examples: [
      ['Retry one device now', '$0 device register 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --operator alice'],
      ['Retry every device not registered yet', '$0 device register --operator alice'],
    ],
  });

  uuid = Option.String({ required: false, name: 'uuid' });
  operator = Option.String('--operator', { required: true, description: 'The operator credential to use (certs/OPERATOR-NAME.crt)' });

  protected async run(): Promise<number> {
    const id = this.uuid === undefined ? undefined : canonicalUuid(this.uuid);
    if (this.uuid !== undefined && !id) throw usage(`"${this.uuid}" is not a UUID`);
    const client = this.client({ kind: 'operator', name: this.operator });
    try {
      const n = await client.registerNow(id);
      this.print(`${n} device${n === 1 ? '' : 's'} due for registration now`);
      return 0;
    } finally {
      client.close();
    }
  }
}
