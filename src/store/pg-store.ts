import { LitebootError } from '../errors.js';
import type { Store } from './types.js';

export interface PgStoreOptions {
  url: string;
  readOnly?: boolean;
  log?: (message: string) => void;
  onCommit?: (seconds: number) => void;
}

/** Placeholder until the PostgreSQL store lands (next commit on this branch). */
export async function openPgStore(_o: PgStoreOptions): Promise<Store> {
  throw new LitebootError('BAD_CONFIG', 'the PostgreSQL store is not implemented yet');
}
