import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LitebootError } from '../../errors.js';
import { Option } from 'clipanion';
import { isDatabaseUrl, openStoreAt } from '../../store/open.js';
import { BaseCommand } from '../base.js';

export class DeviceListCommand extends BaseCommand {
  static override paths = [['device', 'list']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Devices',
    description: 'list the devices in the database with their cloud registration state',
    details: `
      Reads the database (read-only: it works beside a running server) and lists every device with
      its certificate counts and its registration with the cloud service: \`registered\`, \`pending\`
      (with the attempts made, the last error and the next try), \`failed\` (given up until an
      operator retries: \`liteboot device register\`) or \`none\` (no provider configured).
    `,
    examples: [
      ['List devices', '$0 device list'],
      ['Devices still waiting for registration, for a script', "$0 device list --json | jq '.[] | select(.registration.status != \"registered\")'"],
    ],
  });

  db = Option.String('--db', 'CADB.db', { description: 'The database: a path or a postgres:// URL' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    if (!isDatabaseUrl(this.db) && !existsSync(resolve(this.db))) throw new LitebootError('FILE_MISSING', `no database at ${resolve(this.db)}: run liteboot where the server keeps CADB.db, or pass --db FILE`);
    const store = await openStoreAt(this.db, { readOnly: true });
    try {
      const devices = await store.listDevices();
      if (this.json) {
        this.printJson(
          devices.map((d) => ({
            id: d.id,
            certificates: d.certificates,
            validCertificates: d.validCertificates,
            enrolledBy: d.enrolledBy ?? null,
            registration: {
              status: d.registration.status,
              attempts: d.registration.attempts,
              lastError: d.registration.lastError ?? null,
              nextAttemptAt: d.registration.nextAttemptAt ? new Date(d.registration.nextAttemptAt).toISOString() : null,
              updatedAt: d.registration.updatedAt ? new Date(d.registration.updatedAt).toISOString() : null,
            },
          })),
        );
        return 0;
      }
      for (const d of devices) {
        const r = d.registration;
        const detail = r.status === 'pending' && r.attempts > 0 ? ` (${r.attempts} attempts, last: ${r.lastError ?? '?'}${r.nextAttemptAt ? `, next ${new Date(r.nextAttemptAt).toISOString()}` : ''})` : r.status === 'failed' ? ` (${r.lastError ?? ''})` : '';
        this.print(`${d.id}  ${d.validCertificates}/${d.certificates} valid  ${r.status}${detail}${d.enrolledBy ? `  enrolled by ${d.enrolledBy}` : ''}`);
      }
      this.print(`${devices.length} device${devices.length === 1 ? '' : 's'}`);
      return 0;
    } finally {
      await store.close();
    }
  }
}
