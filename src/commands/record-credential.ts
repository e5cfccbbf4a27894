import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { MadeCredential } from '../ca/setup.js';
import { isLitebootError } from '../errors.js';
import { describeDb } from '../config.js';
import { isDatabaseUrl, openStoreAt } from '../store/open.js';

/**
 * Records a credential just made in the database beside it, so that an operator can revoke it by
 * serial. With no database yet, or a server holding it, the server records it instead: at
 * start-up (it reads certs/) or the first time the credential connects. Returns what to tell the user.
 */
export async function recordNewCredential(made: MadeCredential, spec: string): Promise<string> {
  const db = isDatabaseUrl(spec) ? spec.trim() : resolve(spec);
  // A PostgreSQL database is shared by the running servers: record it there at once.
  const url = isDatabaseUrl(db);
  if (!url && !existsSync(db)) return `the server records it (serial ${made.serial}) when it starts`;
  let store;
  try {
    store = await openStoreAt(db);
  } catch (e) {
    if (isLitebootError(e) && e.code === 'DB_LOCKED') return `the running server records it (serial ${made.serial}) when it first connects, or at its next start`;
    throw e;
  }
  try {
    await store.recordCredential({ serial: made.serial, kind: made.kind, name: made.cn, der: made.der, recordedAt: new Date() });
  } finally {
    await store.close();
  }
  return `recorded it in ${url ? describeDb(db) : db} (serial ${made.serial})`;
}
