import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { loadServerConfig } from '../config.js';

/**
 * The database a command opens, chosen as `server start` chooses it: `--db`, then `[server] db`
 * in the configuration file, then `$LITEBOOT_DB`, then CADB.db in the current directory. A
 * postgres:// URL is returned as it is, a path absolute.
 */
export function commandDb(o: { db?: string; config?: string; certs: string }): string {
  return loadServerConfig({ configPath: o.config, cwd: process.cwd(), home: homedir(), env: process.env, flags: { db: o.db }, certsDir: resolve(o.certs) }).db;
}
