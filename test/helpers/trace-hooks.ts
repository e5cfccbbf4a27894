// Module hooks (they run on the loader thread): append every ES module resolved to $LITEBOOT_TRACE_IMPORTS.
import { appendFileSync } from 'node:fs';

type Next = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: Next): Promise<{ url: string }> {
  const r = await next(specifier, context);
  if (process.env.LITEBOOT_TRACE_IMPORTS) appendFileSync(process.env.LITEBOOT_TRACE_IMPORTS, r.url + '\n');
  return r;
}
