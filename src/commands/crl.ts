import { Option } from 'clipanion';
import { writeFileAtomic } from '../atomic-file.js';
import { CrlPublisher } from '../ca/crl-publisher.js';
import { isLitebootError } from '../errors.js';
import { isDatabaseUrl, openStoreAt } from '../store/open.js';
import { commandDb } from './db-spec.js';
import { BaseCommand, positiveInt } from './base.js';
import { CaCommand } from './ca-password.js';

export class CrlCommand extends CaCommand {
  static override paths = [['crl']];
  static override usage = BaseCommand.Usage({
    category: 'Certificates',
    description: 'write the current certificate revocation list',
    details: `
      Builds the CRL (RFC 5280, v2, signed by the CA) from the database: every revoked device
      certificate and bootstrap or operator credential, with its date and reason. DER by default
      (\`--pem\` for PEM), to standard output or \`-o FILE\` (written atomically). Beside a running server
      it reads the database read-only and gives the server's current CRL number; otherwise it takes
      the next number. A running server also serves it at \`http://HOST:http_port/crl\` and can keep a
      file current itself (\`[server] crl_file\`).
    `,
    examples: [
      ['A CRL file for an MQTT broker', '$0 crl --pem -o /etc/mosquitto/liteboot.crl'],
      ['Check it with openssl', '$0 crl | openssl crl -inform DER -CAfile certs/CA.crt -noout -text'],
    ],
  });

  db = Option.String('--db', { description: 'The database: a path or a postgres:// URL (default: [server] db, $LITEBOOT_DB, then CADB.db)' });
  config = Option.String('--config', { description: 'Configuration file (default ./.liteboot.toml, then ~/.liteboot.toml)' });
  out = Option.String('-o,--output', { description: 'Write to FILE instead of standard output' });
  pem = Option.Boolean('--pem', false, { description: 'PEM instead of DER' });
  days = Option.String('--days', { description: 'Validity (nextUpdate) in days (default 7)' });

  protected async run(): Promise<number> {
    const ca = await this.loadCa();
    const days = positiveInt(this.days, '--days') ?? 7;
    const db = commandDb(this);
    let readOnly = false;
    let store;
    try {
      // PostgreSQL: servers may run beside it; the CRL number comes from the shared counter.
      store = await openStoreAt(db);
    } catch (e) {
      if (isDatabaseUrl(db) || !isLitebootError(e) || e.code !== 'DB_LOCKED') throw e;
      readOnly = true;
      store = await openStoreAt(db, { readOnly: true });
    }
    try {
      const crls = new CrlPublisher({ issuer: ca.issuer, store, clock: () => new Date(), days, readOnly });
      const now = new Date();
      for (const r of await store.revocations()) crls.add(r.serial, r.revokedAt ?? now, r.reason);
      const crl = await crls.rebuild();
      crls.stop();
      const bytes = this.pem ? Buffer.from(crl.pem) : crl.der;
      if (this.out === undefined) {
        this.context.stdout.write(bytes);
      } else {
        writeFileAtomic(this.out, bytes);
        this.context.stderr.write(`wrote ${this.out}: CRL number ${crl.number}, ${crl.entries} revoked\n`);
      }
      return 0;
    } finally {
      await store.close();
    }
  }
}
