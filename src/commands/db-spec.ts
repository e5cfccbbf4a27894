import { resolveDbLocation } from './locations.js';

/**
 * The database a command opens: `--db`, then `[server] db` of the configuration file (`--config`
 * or the one the server reads), then `$LITEBOOT_DB`, then CADB.db beside the certs directory: the
 * one rule of locations.ts, for the commands that also take `--config`.
 */
export function commandDb(o: { db?: string; config?: string; certs: string }): string {
  return resolveDbLocation(o.certs, o.db, { configPath: o.config });
}
