import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { Option } from 'clipanion';
import { describeDb, loadServerConfig } from '../../config.js';
import { LitebootError } from '../../errors.js';
import { isDatabaseUrl, openStoreAt } from '../../store/open.js';
import { BaseCommand } from '../base.js';

export class DbMigrateCommand extends BaseCommand {
  static override paths = [['db', 'migrate']];
  static override usage = BaseCommand.Usage({
    category: 'Operations',
    description: 'create or bring up to date the database schema, then print its version',
    details: `
      Applies the schema migrations the database still needs and prints the version it is at; running
      it again changes nothing. On PostgreSQL the migrations run under an advisory lock, so this is
      safe beside servers that start at the same time (they migrate the same way on start). For
      CADB.db it does what \`server start\` does on open (a Go database is converted once and its
      original kept as CADB.db.bak-<version>).

      The database: \`--db\`, then \`[server] db\` in .liteboot.toml, then \`$LITEBOOT_DB\`, then CADB.db.
    `,
    examples: [
      ['Prepare a PostgreSQL database before the servers start', '$0 db migrate --db postgres://liteboot@db.example.net/liteboot'],
    ],
  });

  db = Option.String('--db', { description: 'A postgres:// URL or a CADB.db path' });
  config = Option.String('--config', { description: 'Configuration file (default ./.liteboot.toml, then ~/.liteboot.toml)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const config = loadServerConfig({ configPath: this.config, cwd: process.cwd(), home: homedir(), env: process.env, flags: { db: this.db }, certsDir: resolve(this.certs) });
    if (isDatabaseUrl(config.db)) {
      const { migratePg } = await import('../../store/pg-copy.js');
      const r = await migratePg(config.db);
      if (this.json) this.printJson({ db: describeDb(config.db), schemaVersion: r.to, migratedFrom: r.ran > 0 ? r.from : null });
      else this.print(`${describeDb(config.db)}: schema version ${r.to} (${r.ran > 0 ? `migrated from ${r.from === '' ? 'an empty database' : r.from}` : 'up to date already'})`);
      return 0;
    }
    if (!existsSync(config.dbPath)) throw new LitebootError('FILE_MISSING', `no database at ${config.dbPath} (setup-ca or server start creates it; pass --db PATH or a postgres:// URL)`);
    // sql.js migrates on open, keeping the original as CADB.db.bak-<version>.
    const store = await openStoreAt(config.db, {});
    let version: string | undefined;
    try {
      version = await store.getSetting('schemaVersion');
    } finally {
      await store.close();
    }
    if (this.json) this.printJson({ db: config.db, schemaVersion: version ?? null });
    else this.print(`${config.db}: schema version ${version ?? '(none)'}`);
    return 0;
  }
}
