import { readFileSync } from 'node:fs';
import { hostname as systemHostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { LitebootError } from './errors.js';

/**
 * smol-toml's one-file CommonJS build, loaded only when a configuration file exists: its ES build
 * is nine modules, a measurable part of every client command's start-up (issue 16).
 */
const parseToml = (text: string): unknown => (createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml')).parse(text);

/**
 * Hostname for the set-up and device commands (CLI.md): the first argument, then $CAHOSTNAME,
 * then the system host name.
 */
export function scriptHostname(arg: string | undefined, env: NodeJS.ProcessEnv): string {
  if (arg && arg.length > 0) return arg;
  if (env.CAHOSTNAME && env.CAHOSTNAME.length > 0) return env.CAHOSTNAME;
  return systemHostname() || 'localhost';
}

/** Everything `server start` runs with, resolved once, validated and frozen. */
export interface ServerConfig {
  hostname: string;
  /** Address to listen on; '' means every interface. */
  listen: string;
  port: number;
  mport: number;
  /** The public plain-HTTP listener for CRL, OCSP and the CA certificate; 0 turns it off. */
  httpPort: number;
  /** The base URL put into device certificates for the CRL, OCSP and caIssuers; '' for none. */
  publicUrl: string;
  /** Validity of each CRL in days. */
  crlDays: number;
  /** Also write the CRL as PEM here on every change (for a broker's crlfile). */
  crlFile?: string;
  /** The tamper-evident audit trail (JSON lines); undefined when turned off (`audit_log = ""`). */
  auditLog?: string;
  /** Who signs OCSP responses: the CA key, or the delegated responder in OCSP.crt/OCSP.key. */
  ocspSigner: 'ca' | 'delegated';
  hubname: string;
  resourcegroup: string;
  mqttport: number;
  requireUuid: boolean;
  /** Who may enrol with a bootstrap credential: any id (`open`) or the allowlist's. */
  enrolment: 'open' | 'allowlist';
  /** The original's first-come enrolment: a bootstrap enrolment may rebind an enrolled id to another key (unsafe). */
  allowRebind: boolean;
  deviceDays: number;
  certsDir: string;
  /**
   * The store: a `postgres://` / `postgresql://` URL (PgStore, several servers may share it) or the
   * absolute path of CADB.db (sql.js, one process). `--db`, then `[server] db`, then `$LITEBOOT_DB`,
   * then `CADB.db` in the current directory. Never logged as it is: see `describeDb`.
   */
  db: string;
  /** The sql.js database's absolute path; '' when `db` is a URL. */
  dbPath: string;
  /** Fold the journal into CADB.db once it holds this many bytes (at least; see the store). */
  compactBytes?: number;
  /** The metrics and health listener (`metrics_listen = "host:port"`); undefined when off (""). */
  metricsListen?: { host: string; port: number; /** false for the default: a port in use then turns metrics off with a warning. */ explicit: boolean };
  /** How log lines look on stderr, and the least severe level written. */
  logFormat: 'text' | 'json';
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  limits: {
    bodyBytes: number;
    uploadBytes: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    handshakeTimeoutMs: number;
    maxConnections: number;
    /** Connections one source address (an IPv6 /64) may hold on each listener; per process. */
    maxConnectionsPerAddress: number;
    maxHeaderBytes: number;
  };
  cloud: CloudConfig;
  /** Where the settings came from, for the start-up line. */
  configFile?: string;
}

export type CloudProviderName = 'none' | 'azure' | 'azure-cli' | 'webhook';

/** `[cloud]`: where new devices are registered, and how hard to try. */
export interface CloudConfig {
  provider: CloudProviderName;
  hubname: string;
  resourcegroup: string;
  /** azure: the service connection string ([cloud] connection_string or $LITEBOOT_AZURE_CONNECTION_STRING). */
  connectionString?: string;
  /** azure: the registry's base URL, when it is not https://<HostName> (a proxy, a test peer). */
  endpoint?: string;
  apiVersion: string;
  /** azure-cli: the command to run. */
  azCommand: string;
  /** webhook: where to POST, and the HMAC secret ([cloud] secret or $LITEBOOT_WEBHOOK_SECRET). */
  url?: string;
  secret?: string;
  /** Extra CA certificates (PEM) to trust for the provider's HTTPS. */
  ca?: Buffer;
  timeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  concurrency: number;
}

/** `host:port` or `[v6]:port` (port 0: any free port); '' turns the listener off. */
export function parseListen(v: string, where: string): { host: string; port: number } | undefined {
  if (v === '') return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]\s]+)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new LitebootError('BAD_CONFIG', `${where}: metrics_listen must be "host:port" (e.g. "127.0.0.1:9464", "[::1]:9464") or "" for off, not "${v}"`);
  return { host: m[1] ?? m[2]!, port };
}

/** Keys of the `[server]` table and their types. */
const SERVER_KEYS = {
  db: 'string',
  hostname: 'string',
  listen: 'string',
  port: 'port',
  mport: 'port',
  http_port: 'port',
  public_url: 'string',
  crl_days: 'positive',
  crl_file: 'string',
  ocsp_signer: 'string',
  audit_log: 'string',
  hubname: 'string',
  resourcegroup: 'string',
  mqttport: 'port',
  require_uuid: 'boolean',
  enrolment: 'string',
  allow_rebind: 'boolean',
  device_days: 'positive',
  body_limit: 'positive',
  headers_timeout: 'seconds',
  request_timeout: 'seconds',
  keepalive_timeout: 'seconds',
  handshake_timeout: 'seconds',
  max_connections: 'positive',
  max_connections_per_address: 'positive',
  journal_compact_bytes: 'positive',
  metrics_listen: 'string',
  log_format: 'string',
  log_level: 'string',
} as const;
type ServerKey = keyof typeof SERVER_KEYS;

/** Values given on the command line; undefined means "not given". */
export type ServerFlags = Partial<Record<ServerKey, string | number | boolean>>;

function check(key: string, kind: string, v: unknown, where: string): string | number | boolean {
  const bad = (what: string) => new LitebootError('BAD_CONFIG', `${where}: ${key} must be ${what}, not ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)}`);
  const num = typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : v;
  switch (kind) {
    case 'string':
      if (typeof v !== 'string') throw bad('a string');
      return v;
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === 'false') return v === 'true';
      throw bad('true or false');
    case 'port':
      if (typeof num !== 'number' || !Number.isInteger(num) || num < 0 || num > 65535) throw bad('a port number (0-65535)');
      return num;
    case 'positive':
      if (typeof num !== 'number' || !Number.isInteger(num) || num < 1) throw bad('a whole number >= 1');
      return num;
    case 'seconds':
      if (typeof num !== 'number' || !(num > 0) || num > 3600) throw bad('a number of seconds (0-3600)');
      return num;
    default:
      throw bad(kind);
  }
}

/** Reads `.liteboot.toml`: the given path, else the current directory, then the home directory. */
function readConfigFile(explicit: string | undefined, cwd: string, home: string | undefined): { path?: string; table: Record<string, unknown>; cloud: Record<string, unknown> } {
  const candidates = explicit ? [resolve(cwd, explicit)] : [join(cwd, '.liteboot.toml'), ...(home ? [join(home, '.liteboot.toml')] : [])];
  for (const path of candidates) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) continue;
      throw new LitebootError(explicit ? 'FILE_MISSING' : 'FILE_UNREADABLE', `cannot read the configuration ${path}: ${(e as Error).message}`);
    }
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(text) as Record<string, unknown>;
    } catch (e) {
      // smol-toml's TomlError carries the line and column; its message repeats them with a code excerpt.
      const { line, column } = e as { line?: number; column?: number };
      const why = (e as Error).message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      throw new LitebootError('BAD_CONFIG', `${path}${line ? `:${line}${column ? `:${column}` : ''}` : ''}: not valid TOML: ${why}`);
    }
    for (const table of Object.keys(doc)) {
      if (table !== 'server' && table !== 'cloud') throw new LitebootError('BAD_CONFIG', `${path}: unknown table [${table}] (liteboot reads [server] and [cloud])`);
    }
    const server = (doc.server ?? {}) as Record<string, unknown>;
    const cloud = (doc.cloud ?? {}) as Record<string, unknown>;
    if (typeof server !== 'object' || Array.isArray(server)) throw new LitebootError('BAD_CONFIG', `${path}: [server] must be a table`);
    if (typeof cloud !== 'object' || Array.isArray(cloud)) throw new LitebootError('BAD_CONFIG', `${path}: [cloud] must be a table`);
    return { path, table: server, cloud };
  }
  return { table: {}, cloud: {} };
}

const CLOUD_KEYS = {
  provider: 'string',
  connection_string: 'string',
  endpoint: 'string',
  api_version: 'string',
  az_command: 'string',
  url: 'string',
  secret: 'string',
  ca_file: 'string',
  timeout: 'seconds',
  retry_min: 'seconds',
  retry_max: 'seconds',
  concurrency: 'positive',
} as const;

function loadCloudConfig(table: Record<string, unknown>, where: string, server: { hubname: string; resourcegroup: string }, env: NodeJS.ProcessEnv, cwd: string): CloudConfig {
  const v: Record<string, string | number | boolean> = {};
  for (const [k, val] of Object.entries(table)) {
    if (!(k in CLOUD_KEYS)) throw new LitebootError('BAD_CONFIG', `${where}: unknown key "${k}" in [cloud] (known: ${Object.keys(CLOUD_KEYS).join(', ')})`);
    v[k] = check(k, CLOUD_KEYS[k as keyof typeof CLOUD_KEYS], val, where);
  }
  const provider = (v.provider as string | undefined) ?? 'none';
  if (!['none', 'azure', 'azure-cli', 'webhook'].includes(provider)) {
    throw new LitebootError('BAD_CONFIG', `${where}: [cloud] provider must be none, azure, azure-cli or webhook, not "${provider}"`);
  }
  let ca: Buffer | undefined;
  if (typeof v.ca_file === 'string') {
    try {
      ca = readFileSync(resolve(cwd, v.ca_file));
    } catch (e) {
      throw new LitebootError('BAD_CONFIG', `${where}: cannot read [cloud] ca_file ${v.ca_file}: ${(e as Error).message}`);
    }
  }
  const secs = (k: string, d: number) => Math.round(((v[k] as number | undefined) ?? d) * 1000);
  const cfg: CloudConfig = {
    provider: provider as CloudProviderName,
    hubname: server.hubname,
    resourcegroup: server.resourcegroup,
    // Secrets may live in the environment instead of the file.
    connectionString: (v.connection_string as string | undefined) ?? env.LITEBOOT_AZURE_CONNECTION_STRING,
    endpoint: v.endpoint as string | undefined,
    apiVersion: (v.api_version as string | undefined) ?? '2021-04-12',
    azCommand: (v.az_command as string | undefined) ?? 'az',
    url: v.url as string | undefined,
    secret: (v.secret as string | undefined) ?? env.LITEBOOT_WEBHOOK_SECRET,
    ca,
    timeoutMs: secs('timeout', 10),
    retryMinMs: secs('retry_min', 10),
    retryMaxMs: secs('retry_max', 3600),
    concurrency: (v.concurrency as number | undefined) ?? 4,
  };
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new LitebootError('BAD_CONFIG', `${where}: [cloud] provider = "${provider}" needs ${what}`);
  };
  if (provider === 'azure') need(!!cfg.connectionString, 'connection_string (or $LITEBOOT_AZURE_CONNECTION_STRING)');
  if (provider === 'webhook') {
    need(!!cfg.url, 'url');
    need(!!cfg.secret, 'secret (or $LITEBOOT_WEBHOOK_SECRET)');
    try {
      new URL(cfg.url!);
    } catch {
      throw new LitebootError('BAD_CONFIG', `${where}: [cloud] url "${cfg.url}" is not a URL`);
    }
  }
  if (provider === 'azure-cli') need(!!cfg.hubname && !!cfg.resourcegroup, '[server] hubname and resourcegroup');
  if (cfg.retryMaxMs < cfg.retryMinMs) throw new LitebootError('BAD_CONFIG', `${where}: [cloud] retry_max must not be less than retry_min`);
  return cfg;
}

export interface LoadServerConfigOptions {
  configPath?: string;
  cwd: string;
  home?: string;
  env: NodeJS.ProcessEnv;
  flags: ServerFlags;
  certsDir: string;
  /**
   * The database when neither `--db` (flags.db), `[server] db` nor `$LITEBOOT_DB` names one; default
   * `CADB.db` in `cwd`. '' for a command that opens no database: then `db` and `dbPath` are ''.
   */
  dbPath?: string;
}

/** A PostgreSQL connection URL (the store factory's rule; config keeps its own copy: imports point down). */
export function isDatabaseUrlSpec(v: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(v);
}

/** The database for logs and messages: a URL without its password. */
export function describeDb(db: string): string {
  if (!isDatabaseUrlSpec(db)) return db;
  try {
    const u = new URL(db);
    if (u.password) u.password = '***';
    // libpq also takes secrets as query parameters (?password=, ?sslpassword=): masked too.
    for (const k of [...u.searchParams.keys()]) if (/^(ssl)?password$/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * `--db` / `[server] db` / `$LITEBOOT_DB`: a postgres URL is kept as it is (libpq variables such as
 * PGPASSWORD and PGSSLMODE still apply: the pg client reads them); anything else is a path,
 * resolved against the current directory as before.
 */
function resolveDb(v: string, cwd: string, where: string): string {
  if (v === '') throw new LitebootError('BAD_CONFIG', `${where}: db must be a path to CADB.db or a postgres:// URL, not ""`);
  if (!isDatabaseUrlSpec(v)) return resolve(cwd, v);
  try {
    new URL(v);
  } catch {
    // The value may hold a password: do not echo it.
    throw new LitebootError('BAD_CONFIG', `${where}: db looks like a postgres:// URL but cannot be parsed (postgres://user[:password]@host[:port]/dbname, special characters percent-encoded)`);
  }
  return v;
}

/**
 * Resolves the server configuration (CLI.md "Configuration"): flags over `.liteboot.toml` over
 * defaults. The hostname: --hostname, the file's hostname, $CAHOSTNAME, the system host name,
 * `localhost`.
 */
export function loadServerConfig(o: LoadServerConfigOptions): ServerConfig {
  const file = readConfigFile(o.configPath, o.cwd, o.home);
  const where = file.path ?? 'configuration';
  const values: Partial<Record<ServerKey, string | number | boolean>> = {};
  for (const [k, v] of Object.entries(file.table)) {
    if (!(k in SERVER_KEYS)) {
      throw new LitebootError('BAD_CONFIG', `${where}: unknown key "${k}" in [server] (known: ${Object.keys(SERVER_KEYS).join(', ')})`);
    }
    values[k as ServerKey] = check(k, SERVER_KEYS[k as ServerKey], v, where);
  }
  for (const [k, v] of Object.entries(o.flags)) {
    if (v !== undefined) values[k as ServerKey] = check(k, SERVER_KEYS[k as ServerKey], v, 'command line');
  }
  const str = (k: ServerKey, d: string) => (values[k] as string | undefined) ?? d;
  const num = (k: ServerKey, d: number) => (values[k] as number | undefined) ?? d;
  const hostname = (values.hostname as string | undefined) || o.env.CAHOSTNAME || systemHostname() || 'localhost';
  const secs = (k: ServerKey, d: number) => Math.round(num(k, d) * 1000);
  const dbWhere = o.flags.db !== undefined ? 'command line' : values.db !== undefined ? where : o.env.LITEBOOT_DB !== undefined ? '$LITEBOOT_DB' : where;
  const db = o.dbPath === '' ? '' : resolveDb((values.db as string | undefined) ?? o.env.LITEBOOT_DB ?? o.dbPath ?? 'CADB.db', o.cwd, dbWhere);
  const dbPath = isDatabaseUrlSpec(db) ? '' : db;
  const cfg: ServerConfig = {
    hostname,
    listen: str('listen', ''),
    port: num('port', 1443),
    mport: num('mport', 8443),
    httpPort: num('http_port', 8080),
    publicUrl: '',
    crlDays: num('crl_days', 7),
    crlFile: values.crl_file !== undefined && values.crl_file !== '' ? resolve(o.cwd, values.crl_file as string) : undefined,
    ocspSigner: str('ocsp_signer', 'ca') as ServerConfig['ocspSigner'],
    // Default on: beside CADB.db; for a PostgreSQL store (no file of its own), beside the certs
    // directory (each server keeps its own trail of what it issued).
    auditLog:
      values.audit_log === undefined
        ? dbPath
          ? join(dirname(dbPath), 'audit.jsonl')
          : isDatabaseUrlSpec(db) && o.certsDir
            ? join(dirname(o.certsDir), 'audit.jsonl')
            : undefined
        : values.audit_log === ''
          ? undefined
          : resolve(o.cwd, values.audit_log as string),
    hubname: str('hubname', ''),
    resourcegroup: str('resourcegroup', ''),
    mqttport: num('mqttport', 8883),
    requireUuid: (values.require_uuid as boolean | undefined) ?? true,
    enrolment: str('enrolment', 'open') as ServerConfig['enrolment'],
    allowRebind: (values.allow_rebind as boolean | undefined) ?? false,
    deviceDays: num('device_days', 365),
    certsDir: o.certsDir,
    db,
    dbPath,
    compactBytes: values.journal_compact_bytes as number | undefined,
    metricsListen: ((l) => l && { ...l, explicit: values.metrics_listen !== undefined })(parseListen(str('metrics_listen', '127.0.0.1:9464'), where)),
    logFormat: str('log_format', 'text') as ServerConfig['logFormat'],
    logLevel: str('log_level', 'info') as ServerConfig['logLevel'],
    limits: {
      bodyBytes: num('body_limit', 16 * 1024),
      uploadBytes: 4096,
      headersTimeoutMs: secs('headers_timeout', 10),
      requestTimeoutMs: secs('request_timeout', 30),
      keepAliveTimeoutMs: secs('keepalive_timeout', 60),
      handshakeTimeoutMs: secs('handshake_timeout', 10),
      maxConnections: num('max_connections', 2048),
      // A device holds one connection for a handshake and a request; 64 at once from one address is
      // a production line behind one NAT, and a flood needs 32 addresses to fill max_connections.
      maxConnectionsPerAddress: num('max_connections_per_address', Math.min(64, num('max_connections', 2048))),
      maxHeaderBytes: 8 * 1024,
    },
    cloud: loadCloudConfig(file.cloud, where, { hubname: str('hubname', ''), resourcegroup: str('resourcegroup', '') }, o.env, o.cwd),
    configFile: file.path,
  };
  if (cfg.limits.requestTimeoutMs < cfg.limits.headersTimeoutMs) {
    throw new LitebootError('BAD_CONFIG', `${where}: request_timeout (${cfg.limits.requestTimeoutMs / 1000} s) must not be shorter than headers_timeout (${cfg.limits.headersTimeoutMs / 1000} s)`);
  }
  // Devices' certificates name the public listener unless told otherwise (or it is off).
  cfg.publicUrl = values.public_url !== undefined ? (values.public_url as string) : cfg.httpPort !== 0 ? `http://${hostname}:${cfg.httpPort}` : '';
  if (cfg.publicUrl !== '') {
    let u: URL | undefined;
    try {
      u = new URL(cfg.publicUrl);
    } catch {
      /* reported below */
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !/^[\x21-\x7e]+$/.test(cfg.publicUrl)) {
      throw new LitebootError('BAD_CONFIG', `${where}: public_url must be an http:// URL (or empty for none), not "${cfg.publicUrl}"`);
    }
    // Every device certificate carries it three times, and the CBOR /cr answer must fit the devices' 1 KB buffer.
    if (cfg.publicUrl.length > 64) throw new LitebootError('BAD_CONFIG', `${where}: public_url is ${cfg.publicUrl.length} characters; at most 64 keep the device certificate within the devices' 1 KB receive buffer`);
  }
  const ports = [cfg.port, cfg.mport, cfg.httpPort].filter((p) => p !== 0);
  if (new Set(ports).size !== ports.length) throw new LitebootError('BAD_CONFIG', `port, mport and http_port must differ (${cfg.port}, ${cfg.mport}, ${cfg.httpPort})`);
  if (cfg.logFormat !== 'text' && cfg.logFormat !== 'json') throw new LitebootError('BAD_CONFIG', `${where}: log_format must be "text" or "json", not "${cfg.logFormat}"`);
  if (!['debug', 'info', 'warn', 'error'].includes(cfg.logLevel)) throw new LitebootError('BAD_CONFIG', `${where}: log_level must be debug, info, warn or error, not "${cfg.logLevel}"`);
  if (cfg.ocspSigner !== 'ca' && cfg.ocspSigner !== 'delegated') {
    throw new LitebootError('BAD_CONFIG', `${where}: ocsp_signer must be "ca" or "delegated", not "${cfg.ocspSigner}"`);
  }
  if (cfg.enrolment !== 'open' && cfg.enrolment !== 'allowlist') {
    throw new LitebootError('BAD_CONFIG', `${where}: enrolment must be "open" or "allowlist", not "${cfg.enrolment}"`);
  }
  if (cfg.limits.maxConnectionsPerAddress > cfg.limits.maxConnections) {
    throw new LitebootError('BAD_CONFIG', `${where}: max_connections_per_address (${cfg.limits.maxConnectionsPerAddress}) must not be greater than max_connections (${cfg.limits.maxConnections})`);
  }
  if (cfg.port !== 0 && cfg.port === cfg.mport) throw new LitebootError('BAD_CONFIG', `port and mport are both ${cfg.port}; they must differ`);
  return deepFreeze(cfg);
}

function deepFreeze<T>(o: T): T {
  for (const v of Object.values(o as object)) if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) deepFreeze(v);
  return Object.freeze(o);
}
