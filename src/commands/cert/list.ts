import { existsSync } from 'node:fs';
import { Option } from 'clipanion';
import { LitebootError } from '../../errors.js';
import { openStore } from '../../store/sqljs-store.js';
import { BaseCommand, usage } from '../base.js';
import { isPostgresUrl, resolveDbLocation } from '../locations.js';

/** RFC 5280 §5.3.1 CRLReason names, by code. */
const REASONS: Record<number, string> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
};

const DAY_MS = 86_400_000;

/** `30d`, `12h`, `2w` or a bare number of days, as milliseconds. */
export function parseWithin(text: string): number {
  const m = /^([0-9]{1,5})([dhw]?)$/.exec(text);
  if (!m || Number(m[1]) === 0) throw usage(`--expiring takes a duration such as 30d, 12h or 2w, not "${text}"`);
  return Number(m[1]) * { '': DAY_MS, d: DAY_MS, h: 3_600_000, w: 7 * DAY_MS }[m[2] as '' | 'd' | 'h' | 'w'];
}

export class CertListCommand extends BaseCommand {
  static override paths = [['cert', 'list']];
  static override usage = BaseCommand.Usage({
    category: 'Certificates',
    description: 'list the device certificates in the database',
    details: `
      Reads the database (read-only: it works beside a running server) and prints one line per device
      certificate, oldest first: serial, device, state (\`valid\`, \`expired\` or \`revoked\` with the reason),
      and not-after. Filters combine: \`--device ID\`, \`--revoked\`, \`--valid\` (not revoked and not
      expired), \`--expiring 30d\` (valid and expiring within that time; \`h\`, \`d\` or \`w\`). \`--json\` prints an
      array of \`{serial, device, state, notBefore, notAfter, revokedAt, revokeReason, issuedBy, issuedAt}\`,
      serials as decimal strings.
    `,
    examples: [
      ['Every certificate of a device', '$0 cert list --device 1b4e28ba-2fa1-11d2-883f-0016d3cca427'],
      ['Certificates to renew this month, for a script', "$0 cert list --expiring 30d --json | jq -r '.[].serial'"],
      ['Revoked certificates', '$0 cert list --revoked'],
    ],
  });

  device = Option.String('--device', { description: 'Only this device\'s certificates' });
  revoked = Option.Boolean('--revoked', false, { description: 'Only revoked certificates' });
  valid = Option.Boolean('--valid', false, { description: 'Only valid certificates (not revoked, not expired)' });
  expiring = Option.String('--expiring', { description: 'Only valid certificates expiring within this time (30d, 12h, 2w)' });
  db = Option.String('--db', { description: 'The database (default: CADB.db beside the certs directory)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    if (this.revoked && (this.valid || this.expiring !== undefined)) throw usage('--revoked cannot be combined with --valid or --expiring');
    const within = this.expiring === undefined ? undefined : parseWithin(this.expiring);
    const db = resolveDbLocation(this.certs, this.db);
    if (isPostgresUrl(db)) throw usage('cert list reads a CADB.db file; for PostgreSQL, query the certs table with psql');
    if (!existsSync(db)) throw new LitebootError('FILE_MISSING', `no database at ${db}: the server makes it when it first starts (or pass --db FILE, --certs DIR)`);
    const store = await openStore({ path: db, readOnly: true });
    const now = Date.now();
    try {
      const rows = (await store.listCertificates(this.device)).map((c) => {
        const state = !c.valid ? 'revoked' : c.notAfter.getTime() <= now ? 'expired' : 'valid';
        return { c, state };
      });
      const chosen = rows.filter(({ c, state }) => {
        if (this.revoked && state !== 'revoked') return false;
        if ((this.valid || within !== undefined) && state !== 'valid') return false;
        if (within !== undefined && c.notAfter.getTime() > now + within) return false;
        return true;
      });
      if (this.json) {
        this.printJson(
          chosen.map(({ c, state }) => ({
            serial: c.serial,
            device: c.deviceId,
            state,
            notBefore: c.notBefore.toISOString(),
            notAfter: c.notAfter.toISOString(),
            revokedAt: c.revokedAt?.toISOString() ?? null,
            revokeReason: c.revokeReason === undefined ? null : (REASONS[c.revokeReason] ?? String(c.revokeReason)),
            issuedBy: c.issuedBy ?? null,
            issuedAt: c.issuedAt?.toISOString() ?? null,
          })),
        );
        return 0;
      }
      for (const { c, state } of chosen) {
        const why = state === 'revoked' && c.revokeReason !== undefined ? ` (${REASONS[c.revokeReason] ?? c.revokeReason})` : '';
        this.print(`${c.serial}  ${c.deviceId}  ${state}${why}  until ${c.notAfter.toISOString()}`);
      }
      this.print(`${chosen.length} certificate${chosen.length === 1 ? '' : 's'}`);
      return 0;
    } finally {
      await store.close();
    }
  }
}
