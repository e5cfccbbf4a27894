import { existsSync } from 'node:fs';
import { Option } from 'clipanion';
import { readAudit } from '../../audit/audit-log.js';
import { canonicalUuid } from '../../ca/uuid.js';
import { LitebootError } from '../../errors.js';
import { BaseCommand, usage } from '../base.js';
import { serialArg } from '../client-base.js';
import { auditPath } from './verify.js';

export class AuditShowCommand extends BaseCommand {
  static override paths = [['audit', 'show']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Operations',
    description: 'show the audit trail of a certificate or a device',
    details: 'Answers "who issued this certificate, when, and who revoked it": every audit line that names the serial, or the device. Check the log with `liteboot audit verify` first.',
    examples: [
      ['Who issued and revoked a certificate', '$0 audit show --serial 1796153192057603597'],
      ['Everything about a device, for a script', '$0 audit show --device 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --json'],
    ],
  });

  file = Option.String('--file', { description: 'The audit log (default: the one the server writes: [server] audit_log, else audit.jsonl beside the database)' });
  db = Option.String('--db', { description: 'The database whose audit log to read, when [server] audit_log names none (default: [server] db, $LITEBOOT_DB, else CADB.db beside --certs)' });
  config = Option.String('--config', { description: 'Configuration file to read audit_log and db from (default ./.liteboot.toml, then ~/.liteboot.toml)' });
  serial = Option.String('--serial', { description: 'Lines about this certificate serial (decimal)' });
  device = Option.String('--device', { description: 'Lines about this device id' });
  json = Option.Boolean('--json', false, { description: 'Print JSON lines as written' });

  protected async run(): Promise<number> {
    if ((this.serial === undefined) === (this.device === undefined)) throw usage('give --serial N or --device UUID');
    const serial = this.serial !== undefined ? serialArg(this.serial).toString() : undefined;
    const device = this.device !== undefined ? canonicalUuid(this.device) : undefined;
    if (this.device !== undefined && !device) throw usage(`"${this.device}" is not a UUID`);
    const path = auditPath(this);
    if (!existsSync(path)) throw new LitebootError('FILE_MISSING', `no audit log at ${path}: run liteboot where the server keeps it, or pass --file FILE`);
    const rows = readAudit(path).filter((r) =>
      serial !== undefined ? r.serial === serial : r.device === device || (Array.isArray(r.devices) && r.devices.includes(device!)),
    );
    if (this.json) {
      for (const r of rows) this.print(JSON.stringify(r));
      return rows.length > 0 ? 0 : 1;
    }
    for (const r of rows) {
      const { seq, time, event, prev: _p, hash: _h, ...rest } = r;
      void _p;
      void _h;
      this.print(`${time}  #${seq}  ${event}  ${Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ')}`);
    }
    if (rows.length === 0) this.context.stderr.write(`liteboot: no audit line names ${serial ?? device}\n`);
    return rows.length > 0 ? 0 : 1;
  }
}
