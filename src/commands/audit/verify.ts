import { dirname, join, resolve } from 'node:path';
import { Option } from 'clipanion';
import { verifyAudit } from '../../audit/audit-log.js';
import { BaseCommand } from '../base.js';

/** The audit log the server writes by default: `audit.jsonl` beside the database. */
export function defaultAuditPath(file: string | undefined, db: string): string {
  return file !== undefined ? resolve(file) : join(dirname(resolve(db)), 'audit.jsonl');
}

export class AuditVerifyCommand extends BaseCommand {
  static override paths = [['audit', 'verify']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Operations',
    description: 'check that the audit log was not edited, cut or reordered',
    details: `
      Follows the hash chain through the audit log and its rotated files (\`audit.jsonl.<seq>\`, oldest
      first): every line must hash to its \`hash\`, follow the line before it (\`prev\`) and carry the
      next sequence number. Exits 0 on an intact log; exits 1 naming the first line that does not hold.
      Works beside a running server. A log cut off after its last line cannot be told from a short one:
      compare the last sequence number with what you saw before.
    `,
    examples: [
      ['Check the log beside CADB.db', '$0 audit verify'],
      ['Check a copy', '$0 audit verify /backup/audit.jsonl --json'],
    ],
  });

  file = Option.String({ name: 'file', required: false });
  db = Option.String('--db', 'CADB.db', { description: 'The database whose audit log to check (audit.jsonl beside it)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const v = verifyAudit(defaultAuditPath(this.file, this.db));
    if (this.json) {
      this.printJson({ ok: v.ok, lines: v.lines, files: v.files, bad: v.bad ?? null });
    } else if (v.ok) {
      this.print(`intact: ${v.lines} line${v.lines === 1 ? '' : 's'} in ${v.files.length} file${v.files.length === 1 ? '' : 's'}`);
    } else {
      this.context.stderr.write(`liteboot: ${v.bad!.file}:${v.bad!.line}: ${v.bad!.why}\n`);
    }
    return v.ok ? 0 : 1;
  }
}
