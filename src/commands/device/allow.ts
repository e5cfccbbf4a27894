import { relative } from 'node:path';
import { readFileSync } from 'node:fs';
import { Option } from 'clipanion';
import { canonicalUuid } from '../../ca/uuid.js';
import { isLitebootError, LitebootError } from '../../errors.js';
import { isDatabaseUrl, openStoreAt } from '../../store/open.js';
import { commandDb } from '../db-spec.js';
import { usage } from '../base.js';
import { ClientCommand } from '../client-base.js';

/** Ids per request: a UUID list of this size stays well inside the server's 16 KiB body limit. */
const BATCH = 300;

/** `device allow` and `device disallow`: the enrolment allowlist (`[server] enrolment = "allowlist"`). */
abstract class AllowlistCommand extends ClientCommand {
  abstract readonly change: 'allow' | 'disallow';
  uuids = Option.Rest({ name: 'uuid' });
  file = Option.String('--file', { description: 'Read UUIDs from FILE, one a line (- for standard input; # starts a comment)' });
  operator = Option.String('--operator', { description: 'Go through the running server as this operator (certs/OPERATOR-NAME.crt)' });
  db = Option.String('--db', { description: 'The database when no --operator: a postgres:// URL (servers may run), or a path with no server running (default: [server] db, $LITEBOOT_DB, then CADB.db)' });

  private ids(): string[] {
    const texts = [...this.uuids];
    if (this.file !== undefined) {
      let text: string;
      try {
        text = this.file === '-' ? readFileSync(0, 'utf8') : readFileSync(this.file, 'utf8');
      } catch (e) {
        throw new LitebootError('FILE_MISSING', `cannot read ${this.file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not readable'}`);
      }
      text.split('\n').forEach((line, i) => {
        const t = line.replace(/#.*/, '').trim();
        if (t === '') return;
        if (!canonicalUuid(t)) throw usage(`${this.file}:${i + 1}: "${t.slice(0, 80)}" is not a UUID`);
        texts.push(t);
      });
    }
    if (texts.length === 0) throw usage('give one or more device UUIDs, or --file FILE');
    return texts.map((t) => {
      const id = canonicalUuid(t);
      if (!id) throw usage(`"${t}" is not a UUID`);
      return id;
    });
  }

  protected async run(): Promise<number> {
    const ids = this.ids();
    let changed = 0;
    if (this.operator !== undefined) {
      const client = this.client({ kind: 'operator', name: this.operator });
      try {
        for (let i = 0; i < ids.length; i += BATCH) changed += await client.changeAllowlist(this.change, ids.slice(i, i + BATCH));
      } finally {
        client.close();
      }
    } else {
      const db = commandDb(this);
      let store;
      try {
        store = await openStoreAt(db);
      } catch (e) {
        if (!isDatabaseUrl(db) && isLitebootError(e) && e.code === 'DB_LOCKED') throw new LitebootError('DB_LOCKED', `a running server holds ${this.db ?? relative(process.cwd(), db)}; pass --operator NAME to change the allowlist through it`);
        throw e;
      }
      try {
        changed = this.change === 'allow' ? await store.allowDevices(ids, 'cli', new Date()) : await store.disallowDevices(ids);
      } finally {
        await store.close();
      }
    }
    const verb = this.change === 'allow' ? 'added to' : 'removed from';
    this.print(`${changed} device${changed === 1 ? '' : 's'} ${verb} the enrolment allowlist (${ids.length - changed} already ${this.change === 'allow' ? 'there' : 'absent'})`);
    return 0;
  }
}

export class DeviceAllowCommand extends AllowlistCommand {
  readonly change = 'allow' as const;
  static override paths = [['device', 'allow']];
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: 'add device ids to the enrolment allowlist',
    details: `
      With \`[server] enrolment = "allowlist"\`, a bootstrap enrolment is accepted only for a device id on
      this list (others get 403 \`device not expected\`); operators may still enrol any id. Without
      \`--operator\` the database (\`--db\`) is changed directly, which needs the server stopped; with
      \`--operator NAME\` the change goes through the running server.
    `,
    examples: [
      ['Expect two devices', '$0 device allow 56d38f73-3f6f-4a59-86bc-d315a1ccc634 0b4b6a0e-7f43-4c55-9a8e-0d2f6b3d9a11'],
      ["A factory's list, through the running server", '$0 device allow --file batch-7.txt --operator alice'],
    ],
  });
}

export class DeviceDisallowCommand extends AllowlistCommand {
  readonly change = 'disallow' as const;
  static override paths = [['device', 'disallow']];
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: 'remove device ids from the enrolment allowlist',
    details: 'The device keeps the certificates it has (revoke them with `liteboot cert revoke`); it can no longer enrol with a bootstrap credential.',
    examples: [['No longer expect a device', '$0 device disallow 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --operator alice']],
  });
}
