import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { isIP } from 'node:net';
import { Option } from 'clipanion';
import { canonicalUuid } from '../../ca/uuid.js';
import { LitebootError } from '../../errors.js';
import { usage } from '../base.js';
import { ClientCommand } from '../client-base.js';

export class DeviceRegisterCommand extends ClientCommand {
  static override paths = [['device', 'register']];
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
    const certs = this.certsDir();
    const { host, port } = this.endpoint();
    const read = (f: string) => {
      try {
        return readFileSync(certs.path(f));
      } catch {
        throw new LitebootError('FILE_MISSING', `${certs.path(f)} not found`);
      }
    };
    const body = Buffer.from(id ? `{"DeviceId":"${id}"}` : '{}');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host, port, path: '/api/v1/registrations', method: 'POST', ca: read('CA.crt'), cert: read(`OPERATOR-${this.operator}.crt`), key: read(`OPERATOR-${this.operator}.key`), ...(isIP(host) ? {} : { servername: host }), headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } },
        (r) => {
          let text = '';
          r.on('data', (c: Buffer) => (text += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', (e) => reject(new LitebootError('UNREACHABLE', `cannot reach liteboot at ${host}:${port}: ${e.message}`)));
      req.end(body);
    });
    if (res.status !== 200) throw new LitebootError('SERVER_REFUSED', `the server refused (HTTP ${res.status}): ${res.body.trim()}`);
    const n = /"Devices":(\d+)/.exec(res.body)?.[1] ?? '0';
    this.print(`${n} device${n === '1' ? '' : 's'} due for registration now`);
    return 0;
  }
}
