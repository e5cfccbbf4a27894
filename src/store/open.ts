import { resolve } from 'node:path';
import { openStore } from './sqljs-store.js';
import type { Store } from './types.js';

export interface OpenStoreAtOptions {
  /** sql.js: read beside a running writer. PostgreSQL: writes are refused (DB_READONLY) and no migration runs. */
  readOnly?: boolean;
  /** sql.js only: see OpenStoreOptions.compactBytes. */
  compactBytes?: number;
  /** Operator messages (a migration run, a torn journal tail, the database connection lost and back). */
  log?: (message: string) => void;
  /** Each durable commit with its duration in seconds (for metrics). */
  onCommit?: (seconds: number) => void;
  /** Directory a relative path is resolved against (the caller's working directory). */
  cwd?: string;
}

/** `postgres://…` or `postgresql://…`: a PostgreSQL database; anything else is a CADB.db path. */
export function isDatabaseUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec.trim());
}

/**
 * Opens the store `spec` names: a PostgreSQL URL (several servers on one database) or the path of
 * CADB.db (sql.js, one server). The PostgreSQL client is loaded only for a URL, so a sql.js user
 * never loads `pg`.
 */
export async function openStoreAt(spec: string, o: OpenStoreAtOptions = {}): Promise<Store> {
  if (isDatabaseUrl(spec)) {
    const { openPgStore } = await import('./pg-store.js');
    return openPgStore({ url: spec.trim(), readOnly: o.readOnly, log: o.log, onCommit: o.onCommit });
  }
  return openStore({ path: o.cwd ? resolve(o.cwd, spec) : resolve(spec), readOnly: o.readOnly, compactBytes: o.compactBytes, log: o.log, onCommit: o.onCommit });
}
