import { Option } from 'clipanion';
import { homedir } from 'node:os';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../asn1/keys.js';
import { setupCa } from '../ca/setup.js';
import { describeDb, scriptHostname } from '../config.js';
import { BaseCommand, positiveInt, usage } from './base.js';
import { CaCommand } from './ca-password.js';
import { findConfigFile, isPostgresUrl, recordHostname, resolveDbLocation } from './locations.js';

export class SetupCaCommand extends CaCommand {
  static override paths = [['setup-ca']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'create the CA and the TLS server certificate',
    details: `
      Creates \`CA.key\` and \`CA.crt\` (a self-signed root), \`SERVER.key\` and \`SERVER.crt\` (the TLS
      server certificate for the hostname, signed by the CA) and \`ca_crt.txt\` (the CA certificate
      as C strings for firmware) in the certs directory.

      The hostname is the argument, then \`$CAHOSTNAME\`, then the system host name. Devices check
      it against the server certificate, so use the name they will connect to. It is recorded as
      \`[server] hostname\` in \`.liteboot.toml\` (the one \`server start\` reads; created if there is none),
      so that the server and the device commands use that name too.

      The database is \`--db\`, else \`CADB.db\` beside the certs directory (\`--certs /srv/ca/certs\`:
      \`/srv/ca/CADB.db\`).

      With \`--encrypt\`, \`CA.key\` is written as encrypted PKCS#8 (\`ENCRYPTED PRIVATE KEY\`, PBES2 with
      PBKDF2 and AES-256-CBC). The password: the first line of \`--password-file FILE\`, then
      \`$LITEBOOT_CA_PASSWORD\`, then a prompt on a terminal (asked twice). Every command that signs with
      the CA key, \`server start\` included, then needs it from the same places.

      Refuses to overwrite any of these files or an existing database. To reissue only the server
      certificate (another host name, lost files), use \`liteboot setup-server\`.
    `,
    examples: [
      ['Set up a CA for a server reached as localhost', '$0 setup-ca localhost'],
      ['Add another name and an address to the server certificate', '$0 setup-ca ca.example.net --san ca --san 192.0.2.10'],
      ['Encrypt the CA key with the password in a file', '$0 setup-ca ca.example.net --encrypt --password-file /run/secrets/ca-password'],
      ['Use a P-384 CA with its own names', '$0 setup-ca --key-type p384 --org "Example Ltd" --cn "Example Root"'],
    ],
  });

  hostname = Option.String({ required: false, name: 'hostname' });
  san = Option.Array('--san', [], { description: 'Another DNS name or IP address for the server certificate (repeatable)' });
  org = Option.String('--org', { description: 'Organisation of the CA and server subjects (default "Linaro, LTD")' });
  cn = Option.String('--cn', { description: 'Common name of the CA (default "LRC - YYYYMMDDHHMMSS")' });
  days = Option.String('--days', { description: 'Validity of the CA in days (default 3650)' });
  keyType = Option.String('--key-type', 'p256', { description: 'p256 or p384' });
  db = Option.String('--db', { description: 'The database path, refused if it exists (default: CADB.db beside the certs directory)' });
  encrypt = Option.Boolean('--encrypt', false, { description: 'Encrypt CA.key with a password (see --password-file)' });
  json = Option.Boolean('--json', false, { description: 'Print what was made as JSON' });

  protected async run(): Promise<void> {
    const certs = this.certsDir();
    const hostname = scriptHostname(this.hostname, process.env);
    const dbPath = resolveDbLocation(this.certs, this.db);
    const made = await setupCa({
      certs,
      encryptPassphrase: this.encrypt ? await this.newCaPassword(certs) : undefined,
      // A PostgreSQL database is the server's to prepare (`db migrate`); only a CADB.db file is refused here.
      dbPath: isPostgresUrl(dbPath) ? '' : dbPath,
      hostname,
      sans: this.san,
      org: this.org,
      cn: this.cn,
      days: positiveInt(this.days, '--days'),
      keyAlgorithm: keyAlgorithm(this.keyType),
      now: new Date(),
    });
    const recorded = recordHostnameQuietly(this.context.stderr, hostname);
    if (this.json) {
      this.printJson({ written: made.written, hostname, sans: this.san, caSerial: made.caSerial, serverSerial: made.serverSerial, database: describeDb(dbPath), hostnameRecordedIn: recorded?.path ?? null });
      return;
    }
    for (const p of made.written) this.print(`wrote ${p}`);
    if (recorded?.message) this.print(recorded.message);
  }
}

/**
 * Records the host name the server certificate was made for where `server start` and the device
 * commands look first (CLI.md "Configuration"); a file it cannot edit is a warning, not a failure:
 * the certificates are made by then.
 */
export function recordHostnameQuietly(stderr: NodeJS.WritableStream, hostname: string, configPath?: string): { path: string; message?: string } | undefined {
  const file = findConfigFile(configPath, process.cwd(), homedir());
  try {
    return { path: file.path, message: recordHostname(file, hostname) };
  } catch (e) {
    stderr.write(`liteboot: warning: ${(e as Error).message}\n`);
    return undefined;
  }
}

export function keyAlgorithm(v: string): KeyAlgorithm {
  const alg = { p256: 'P-256', 'p-256': 'P-256', p384: 'P-384', 'p-384': 'P-384' }[v.toLowerCase()] as KeyAlgorithm | undefined;
  if (!alg) throw usage(`--key-type must be one of ${KEY_ALGORITHMS.map((a) => a.replace('-', '').toLowerCase()).join(', ')}, not "${v}"`);
  return alg;
}
