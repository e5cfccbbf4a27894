import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option } from 'clipanion';
import { describeDb } from '../../config.js';
import { LitebootError } from '../../errors.js';
import { checksumOf, countsOf, dumpSqlite, settingsMissing, writeSqlite, type Counts, type Dump } from '../../store/dump.js';
import { isDatabaseUrl } from '../../store/open.js';
import { BaseCommand, usage } from '../base.js';

export class DbCopyCommand extends BaseCommand {
  static override paths = [['db', 'copy']];
  static override usage = BaseCommand.Usage({
    category: 'Operations',
    description: 'copy CADB.db (liteboot or the original Go server) into PostgreSQL, or back',
    details: `
      Moving in: reads CADB.db (read-only, its journal applied; a Go database is migrated in memory,
      the file is left as it is) and writes every certificate (serial, device id, DER byte for byte,
      revocation), device and its cloud registration, credential, allowlist entry and setting (the
      CRL number) into the PostgreSQL database \`--to\` names, creating the schema there if needed, in
      one transaction: a copy that fails leaves the target as it was.

      Then it reads both sides back and prints the row counts and a checksum of each (sha256 over
      "serial|device id|valid|reason|hex(DER)" of every certificate in serial order, then every
      credential): equal checksums mean every serial, id, certificate byte and revocation arrived.
      Exit 1 if they differ.

      The target must hold no certificate, credential or allowlist entry: \`--force\` replaces what
      is there. Stop the server (or run it read-only) while copying: certificates it issues after
      the copy started are not copied. The libpq variables (PGPASSWORD, PGSSLMODE, ...) apply.

      The other way, \`--from postgres://... --to FILE\` writes a new CADB.db (refusing an existing
      file) with the same checks, for going back to one server.
    `,
    examples: [
      ['Move CADB.db into PostgreSQL', '$0 db copy --from CADB.db --to postgres://liteboot@db.example.net/liteboot'],
      ['The counts and checksums for a script', '$0 db copy --from CADB.db --to postgres://liteboot@localhost/liteboot --json'],
      ['Back to one server', '$0 db copy --from postgres://liteboot@localhost/liteboot --to CADB.db'],
    ],
  });

  from = Option.String('--from', { required: true, description: 'The database to read: a CADB.db path (or a postgres:// URL)' });
  to = Option.String('--to', { required: true, description: 'The database to write: a postgres:// URL (or a new CADB.db path)' });
  force = Option.Boolean('--force', false, { description: 'Replace what the PostgreSQL target holds' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const fromUrl = isDatabaseUrl(this.from);
    const toUrl = isDatabaseUrl(this.to);
    if (fromUrl === toUrl) {
      throw usage(fromUrl ? 'from PostgreSQL to PostgreSQL: use pg_dump | pg_restore' : `--to must be a postgres:// URL, not "${this.to}" (for a copy of CADB.db as a file, use liteboot db backup)`);
    }
    const started = performance.now();
    const pgCopy = await import('../../store/pg-copy.js');
    let from: string;
    let to: string;
    let dump: Dump;
    let back: Dump;
    let replaced = 0;
    if (toUrl) {
      from = resolve(this.from);
      to = describeDb(this.to);
      if (!existsSync(from)) throw new LitebootError('FILE_MISSING', `no database at ${from} (pass --from PATH)`);
      dump = await dumpSqlite(from);
      replaced = await pgCopy.copyIntoPg(this.to.trim(), dump, { force: this.force });
      back = await pgCopy.dumpPg(this.to.trim());
    } else {
      // The way back: PostgreSQL into a new CADB.db, for one server again.
      from = describeDb(this.from);
      to = resolve(this.to);
      if (existsSync(to)) throw new LitebootError('FILE_EXISTS', `refusing to overwrite ${to}${this.force ? ' (--force replaces only a PostgreSQL target; move the file away)' : ''}`);
      dump = await pgCopy.dumpPg(this.from.trim());
      await writeSqlite(to, dump);
      back = await dumpSqlite(to);
    }
    const source = { counts: countsOf(dump), checksum: checksumOf(dump) };
    const target = { counts: countsOf(back), checksum: checksumOf(back) };
    const missing = settingsMissing(dump.settings, back.settings);
    const same = source.checksum === target.checksum && sameCounts(source.counts, target.counts) && missing.length === 0;
    const ms = Math.round(performance.now() - started);
    if (this.json) {
      this.printJson({ from, to, source, target, settings: { copied: dump.settings.length - missing.length, missing }, replaced, equal: same, ms });
    } else {
      this.print(`source ${from}: ${line(source.counts)}; checksum ${source.checksum}`);
      this.print(`target ${to}: ${line(target.counts)}; checksum ${target.checksum}`);
      this.print(`settings: ${dump.settings.length - missing.length} of ${dump.settings.length} copied${missing.length ? ` (missing: ${missing.join(', ')})` : ''}`);
      if (replaced) this.print(`(--force: replaced ${replaced} rows the target held)`);
      this.print(same ? `copied in ${ms} ms: both sides are equal` : 'the copy DIFFERS from its source');
    }
    if (!same) throw new LitebootError('DB_CORRUPT', 'the copy read back differs from its source (counts, checksum or settings); see above');
    return 0;
  }
}

function sameCounts(a: Counts, b: Counts): boolean {
  return (Object.keys(a) as (keyof Counts)[]).every((k) => a[k] === b[k]);
}

function line(c: Counts): string {
  return `${c.certificates} certificates (${c.revoked} revocations), ${c.devices} devices, ${c.credentials} credentials, ${c.allowlist} allowlist entries`;
}
