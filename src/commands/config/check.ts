import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Option } from 'clipanion';
import { loadServerConfig, type ServerConfig } from '../../config.js';
import { isLitebootError } from '../../errors.js';
import { BaseCommand } from '../base.js';

const REDACTED = '(redacted)';

/** Keys whose whole value is a secret. */
const SECRET_KEY = /secret|password|passphrase|token|^key$/i;

/**
 * A value as it may be shown: a URL's password (a postgres:// URL, a webhook with user:pass@),
 * an Azure connection string's SharedAccessKey and any secret-named key are replaced.
 */
export function redact(key: string, value: unknown): unknown {
  if (value === undefined || value === null || value === '') return value;
  if (SECRET_KEY.test(key)) return REDACTED;
  if (Buffer.isBuffer(value)) return `(${value.length} bytes)`;
  if (typeof value !== 'string') return value;
  if (/connection_?string/i.test(key) || /SharedAccessKey=/i.test(value)) return value.replace(/(SharedAccessKey=)[^;]*/gi, `$1${REDACTED}`);
  // scheme://user:password@host...
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/i, `$1${REDACTED}@`);
}

function redactTree(value: unknown, key = ''): unknown {
  if (Buffer.isBuffer(value)) return redact(key, value);
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactTree(v, k)]));
  }
  return redact(key, value);
}

/** The line of `key = ...` in the file's [table], for a message that names a key but no line. */
function lineOfKey(text: string, table: string | undefined, key: string): number | undefined {
  let current: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.trim();
    const header = /^\[([^\]]+)\]/.exec(t);
    if (header) current = header[1]!.trim();
    else if ((table === undefined || current === table) && new RegExp(`^["']?${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*=`).test(t)) return i + 1;
  }
  return undefined;
}

export class ConfigCheckCommand extends BaseCommand {
  static override paths = [['config', 'check']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'show the resolved server configuration (secrets redacted) and what is wrong with it',
    details: `
      Resolves the configuration as \`liteboot server start\` would (\`--config FILE\`, else
      \`./.liteboot.toml\`, then \`~/.liteboot.toml\`; the environment; the defaults) and prints it with
      secrets redacted (connection strings' keys, the webhook secret, passwords, a URL's password). Then
      it checks the files the server needs: the CA and the server certificate, and that the server
      certificate names the host name. Exits 0 when all is well, 1 naming each problem (with the
      line for a mistake in the file).
    `,
    examples: [
      ['Check the configuration of this directory', '$0 config check'],
      ['For a script', '$0 config check --json --config /etc/liteboot.toml'],
    ],
  });

  config = Option.String('--config', { description: 'Configuration file (default: ./.liteboot.toml, then ~/.liteboot.toml)' });
  db = Option.String('--db', { description: 'The database: a path or postgres:// URL, as for server start (default: [server] db, $LITEBOOT_DB, then CADB.db)' });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const problems: string[] = [];
    let cfg: ServerConfig | undefined;
    try {
      cfg = loadServerConfig({ configPath: this.config, cwd: process.cwd(), home: homedir(), env: process.env, flags: this.db !== undefined ? { db: this.db } : {}, certsDir: resolve(this.certs) });
    } catch (e) {
      if (!isLitebootError(e)) throw e;
      problems.push(this.withLine(e.message));
    }
    if (cfg) problems.push(...this.checkFiles(cfg));
    // The cloud CA bundle is shown by size; the file's path is shown once, beside the settings.
    const shown = cfg ? (redactTree(JSON.parse(JSON.stringify(cfg, (k, v: unknown) => (k === 'configFile' ? undefined : k === 'ca' && v ? `(${(cfg!.cloud.ca as Buffer).length} bytes of PEM)` : v)))) as Record<string, unknown>) : undefined;
    if (this.json) {
      this.printJson({ ok: problems.length === 0, configFile: cfg?.configFile ?? null, config: shown ?? null, problems });
    } else {
      if (shown) {
        this.print(`configuration: ${cfg!.configFile ?? '(no file: defaults and environment)'}`);
        for (const [k, v] of Object.entries(shown)) {
          if (v && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) this.print(`  ${k}.${k2} = ${JSON.stringify(v2)}`);
          else this.print(`  ${k} = ${JSON.stringify(v)}`);
        }
      }
      if (problems.length === 0) this.print('ok');
      for (const p of problems) this.context.stderr.write(`liteboot: ${p}\n`);
    }
    return problems.length === 0 ? 0 : 1;
  }

  /** Adds `:LINE` after the file name of a message about a key, when the file says where it is. */
  private withLine(message: string): string {
    const m = /^(\/[^:]+): (?:unknown key "([^"]+)" in \[(\w+)\]|(?:\[(\w+)\] )?(\w+) must)/.exec(message);
    if (!m) return message;
    const [, path, unknownKey, unknownTable, table, key] = m;
    let text: string;
    try {
      text = readFileSync(path!, 'utf8');
    } catch {
      return message;
    }
    const line = lineOfKey(text, unknownTable ?? table, (unknownKey ?? key)!);
    return line === undefined ? message : `${path}:${line}:${message.slice(path!.length + 1)}`;
  }

  private checkFiles(cfg: ServerConfig): string[] {
    const problems: string[] = [];
    const ca = join(cfg.certsDir, 'CA.crt');
    const server = join(cfg.certsDir, 'SERVER.crt');
    if (!existsSync(ca)) problems.push(`no CA at ${ca}: run \`liteboot setup-ca ${cfg.hostname}\` (or pass --certs DIR)`);
    if (!existsSync(server)) {
      if (existsSync(ca)) problems.push(`no server certificate at ${server}`);
      return problems;
    }
    try {
      const cert = new X509Certificate(readFileSync(server));
      const named = (isIP(cfg.hostname) ? cert.checkIP(cfg.hostname) : cert.checkHost(cfg.hostname)) !== undefined;
      if (!named) problems.push(`${server} is not valid for the host name ${cfg.hostname} (it names ${cert.subjectAltName ?? cert.subject}); devices will refuse it`);
      if (new Date(cert.validTo).getTime() < Date.now()) problems.push(`${server} expired on ${new Date(cert.validTo).toISOString()}`);
    } catch {
      problems.push(`${server} is not a certificate liteboot can read`);
    }
    return problems;
  }
}
