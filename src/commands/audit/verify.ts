import { resolve } from 'node:path';
import { Option } from 'clipanion';
import { verifyAudit } from '../../audit/audit-log.js';
import { LitebootError } from '../../errors.js';
import { BaseCommand } from '../base.js';
import { resolveAuditLocation } from '../locations.js';

/**
 * The audit log a command reads: the file given, else the one the server writes (locations.ts:
 * `[server] audit_log`, else `audit.jsonl` beside the database or, for PostgreSQL, beside the certs directory).
 */
export function auditPath(o: { file: string | undefined; certs: string; db: string | undefined; config: string | undefined }): string {
  if (o.file !== undefined) return resolve(o.file);
  const where = resolveAuditLocation(o.certs, o.db, { configPath: o.config });
  if (where.off) throw new LitebootError('FILE_MISSING', `the audit log is turned off in ${where.configPath} (audit_log = ""): give the log's file to read`);
  return where.path;
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
      ['Check the log the server writes ([server] audit_log, else audit.jsonl beside CADB.db)', '$0 audit verify'],
      ['Check a copy', '$0 audit verify /backup/audit.jsonl --json'],
    ],
  });

  file = Option.String({ name: 'file', required: false });
  db = Option.String('--db', { description: 'The database whose audit log to check, when [server] audit_log names none: audit.jsonl beside it (default: [server] db, $LITEBOOT_DB, else CADB.db beside --certs)' });
  config = Option.String('--config', { description: 'Configuration file to read audit_log and db from (default ./.liteboot.toml, then ~/.liteboot.toml)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const v = verifyAudit(auditPath(this));
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
