import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir, hostname as systemHostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { writeFileAtomic } from '../atomic-file.js';
import { LitebootError } from '../errors.js';

/** The database's file name, beside the certs directory (CLI.md "Files": `certs/` and `CADB.db`). */
export const DB_FILE = 'CADB.db';

/** A PostgreSQL connection URL: passed on untouched, never resolved as a path. */
const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/**
 * Where a command's database is, in the server's order (config.ts): `--db`, then `[server] db`
 * of the configuration file, then `$LITEBOOT_DB` (a PostgreSQL URL as it is, a path resolved
 * against the current directory), else `CADB.db` beside the certs directory: the layout is
 * `certs/` and `CADB.db` side by side, so `--certs /srv/ca/certs` means `/srv/ca/CADB.db` and the
 * default `certs` means `./CADB.db`. One rule for every command, so that `--certs` alone never
 * splits a CA from its database.
 */
export function resolveDbLocation(
  certsFlag: string,
  dbFlag: string | undefined,
  from: { env?: NodeJS.ProcessEnv; configPath?: string; cwd?: string; home?: string } = {},
): string {
  const cwd = from.cwd ?? process.cwd();
  const file = dbFlag ? undefined : findConfigFile(from.configPath, cwd, from.home ?? homedir());
  const given = dbFlag || (file?.exists ? configuredString(file.path, 'db') : undefined) || (from.env ?? process.env).LITEBOOT_DB;
  if (given) return POSTGRES_URL.test(given) ? given : resolve(cwd, given);
  return dbBesideCerts(certsFlag, cwd);
}

/** The default alone: `CADB.db` beside the certs directory (for `server start`, whose config resolves the rest). */
export function dbBesideCerts(certsFlag: string, cwd = process.cwd()): string {
  return join(dirname(resolve(cwd, certsFlag)), DB_FILE);
}

/**
 * Where the server writes its audit log, in the server's order (config.ts): `[server] audit_log`
 * of the configuration file (relative to the current directory, as the server reads it), else
 * `audit.jsonl` beside the database, or beside the certs directory for a PostgreSQL store (each
 * server keeps its own). `off` when the configuration turns it off (`audit_log = ""`).
 */
export function resolveAuditLocation(
  certsFlag: string,
  dbFlag: string | undefined,
  from: { env?: NodeJS.ProcessEnv; configPath?: string; cwd?: string; home?: string } = {},
): { path: string; off: false } | { off: true; configPath: string } {
  const cwd = from.cwd ?? process.cwd();
  const file = findConfigFile(from.configPath, cwd, from.home ?? homedir());
  const configured = file.exists ? configuredValue(file.path, 'audit_log') : undefined;
  if (configured === '') return { off: true, configPath: file.path };
  if (configured !== undefined) return { path: resolve(cwd, configured), off: false };
  const db = resolveDbLocation(certsFlag, dbFlag, from);
  return { path: join(POSTGRES_URL.test(db) ? dirname(resolve(cwd, certsFlag)) : dirname(db), 'audit.jsonl'), off: false };
}

export function isPostgresUrl(db: string): boolean {
  return POSTGRES_URL.test(db);
}

/** The `.liteboot.toml` the server would read (CLI.md "Configuration"): `--config`, else the current directory's, else the home directory's. */
export function findConfigFile(explicit: string | undefined, cwd: string, home: string | undefined): { path: string; exists: boolean } {
  if (explicit) {
    const path = resolve(cwd, explicit);
    return { path, exists: existsSync(path) };
  }
  for (const path of [join(cwd, '.liteboot.toml'), ...(home ? [join(home, '.liteboot.toml')] : [])]) {
    if (existsSync(path)) return { path, exists: true };
  }
  return { path: join(cwd, '.liteboot.toml'), exists: false };
}

/** `[server] hostname` of a configuration file, or undefined (no file, no key; a broken file is for the server to report). */
export function configuredHostname(path: string): string | undefined {
  return configuredString(path, 'hostname');
}

function configuredString(path: string, key: string): string | undefined {
  return configuredValue(path, key) || undefined;
}

/** A string key of `[server]`, empty strings included; undefined if absent (a broken file is for the server to report). */
function configuredValue(path: string, key: string): string | undefined {
  try {
    const doc = parseToml(readFileSync(path, 'utf8')) as { server?: Record<string, unknown> };
    const v = doc.server?.[key];
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The server's host name in the order `server start` resolves it (CLI.md "Configuration"): the
 * argument or `--hostname`, then `[server] hostname` of the configuration file, then
 * `$CAHOSTNAME`, then the system host name, then `localhost`. Client commands use it too, so that
 * they check the server's certificate against the name the server was set up for.
 */
export function serverHostname(arg: string | undefined, configPath: string | undefined, cwd: string, home: string | undefined, env: NodeJS.ProcessEnv): string {
  if (arg) return arg;
  const file = findConfigFile(configPath, cwd, home);
  return (file.exists ? configuredHostname(file.path) : undefined) || env.CAHOSTNAME || systemHostname() || 'localhost';
}

/**
 * Records `hostname` as `[server] hostname` in the configuration file the server and the client
 * commands read (created if there is none), editing only that line so that comments stay.
 * Returns what to tell the user, or undefined when the file already said so.
 */
export function recordHostname(file: { path: string; exists: boolean }, hostname: string): string | undefined {
  const line = `hostname = ${JSON.stringify(hostname)}`;
  let text = '';
  if (file.exists) {
    try {
      text = readFileSync(file.path, 'utf8');
    } catch {
      throw new LitebootError('FILE_UNREADABLE', `cannot read ${file.path} to record hostname "${hostname}" in it; add \`${line}\` to its [server] table`);
    }
    if (configuredHostname(file.path) === hostname) return undefined;
  }
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const header = lines.findIndex((l) => /^\s*\[\s*server\s*\]\s*(#.*)?$/.test(l));
  if (header < 0) {
    lines.push(...(lines.length > 0 ? [''] : []), '[server]', line);
  } else {
    let end = lines.findIndex((l, i) => i > header && /^\s*\[/.test(l));
    if (end < 0) end = lines.length;
    const at = lines.findIndex((l, i) => i > header && i < end && /^\s*hostname\s*=/.test(l));
    if (at >= 0) lines[at] = line;
    else lines.splice(header + 1, 0, line);
  }
  const updated = lines.join('\n') + '\n';
  let ok = false;
  try {
    ok = (parseToml(updated) as { server?: { hostname?: unknown } }).server?.hostname === hostname;
  } catch {
    /* the file was not valid TOML: leave it alone */
  }
  if (!ok) throw new LitebootError('BAD_CONFIG', `cannot record hostname "${hostname}" in ${file.path} (not plain TOML); add \`${line}\` to its [server] table`);
  try {
    writeFileAtomic(file.path, updated, file.exists ? statSync(file.path).mode & 0o777 : 0o644);
  } catch {
    throw new LitebootError('FILE_UNREADABLE', `cannot write ${file.path}; add \`${line}\` to its [server] table`);
  }
  return `recorded hostname "${hostname}" in ${file.path}`;
}
