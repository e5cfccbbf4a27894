import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option } from 'clipanion';
import { LitebootError } from '../../errors.js';
import { describeDb } from '../../config.js';
import { isDatabaseUrl } from '../../store/open.js';
import { openStore } from '../../store/sqljs-store.js';
import { BaseCommand, usage } from '../base.js';

export class DbBackupCommand extends BaseCommand {
  static override paths = [['db', 'backup']];
  static override usage = BaseCommand.Usage({
    category: 'Operations',
    description: 'take a consistent copy of the database, also while the server runs',
    details: `
      Reads CADB.db with its journal applied (read-only: it works beside a running server, and every
      certificate the server has answered with is in it) and writes it to FILE as a plain SQLite file
      (0600, written aside and renamed; \`sqlite3 FILE\` reads it). Refuses to overwrite FILE.

      To restore: stop the server, move CADB.db and its journal (\`CADB.db.lbj.*\`) away, copy the
      backup to CADB.db, start the server. Keep certs/ (above all CA.key) and audit.jsonl with it.
    `,
    examples: [
      ['Back up beside a running server', '$0 db backup /backup/CADB-$(date +%F).db'],
      ['Restore', 'mv CADB.db CADB.db.lbj.* /tmp/ && cp /backup/CADB-2026-12-01.db CADB.db && $0 server start'],
    ],
  });

  file = Option.String({ name: 'file' });
  db = Option.String('--db', 'CADB.db', { description: 'The database to copy' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    if (isDatabaseUrl(this.db)) {
      throw usage(`db backup copies CADB.db; back up the PostgreSQL database ${describeDb(this.db)} with its own tools: pg_dump -Fc -f liteboot.dump '<URL>' (restore: pg_restore -d '<URL>' liteboot.dump)`);
    }
    const target = resolve(this.file);
    if (existsSync(target)) throw new LitebootError('FILE_EXISTS', `refusing to overwrite ${target}`);
    if (!existsSync(resolve(this.db))) throw new LitebootError('FILE_MISSING', `no database at ${resolve(this.db)} (pass --db PATH)`);
    const store = await openStore({ path: resolve(this.db), readOnly: true });
    try {
      const r = store.backupTo(target);
      if (this.json) this.printJson({ file: target, bytes: r.bytes, certificates: r.certificates });
      else this.print(`wrote ${target}: ${r.certificates} certificates, ${r.bytes} bytes`);
      return 0;
    } finally {
      await store.close();
    }
  }
}
