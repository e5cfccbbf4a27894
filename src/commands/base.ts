import { Command, Option } from 'clipanion';
import { resolve } from 'node:path';
import { CertsDir } from '../ca/certs-dir.js';
import { isLitebootError, LitebootError } from '../errors.js';

/**
 * What every liteboot command shares: where its files are, `--verbose`, and how a failure is
 * reported (one line on stderr and exit 1; a usage mistake exits 2; stacks only with --verbose).
 */
export abstract class BaseCommand extends Command {
  certs = Option.String('--certs', 'certs', { description: 'Directory of certificates and keys' });
  verbose = Option.Boolean('--verbose', false, { description: 'Show stack traces on errors' });

  protected abstract run(): Promise<number | void>;

  protected certsDir(): CertsDir {
    return new CertsDir(resolve(this.certs));
  }

  protected print(line = ''): void {
    this.context.stdout.write(line + '\n');
  }

  /**
   * Every `--json` output of the CLI goes through here: 64-bit integers (bigint) become decimal
   * strings, since jq 1.6 and JavaScript numbers round them; keys are camelCase by convention.
   */
  protected printJson(value: unknown): void {
    this.context.stdout.write(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  }

  async execute(): Promise<number> {
    try {
      return (await this.run()) ?? 0;
    } catch (e) {
      return this.report(e);
    }
  }

  protected report(e: unknown): number {
    const err = this.context.stderr;
    if (isLitebootError(e)) {
      err.write(`liteboot: ${e.message}\n`);
      if (this.verbose && e.stack) err.write(e.stack + '\n');
      return e.code === 'USAGE' ? 2 : 1;
    }
    err.write(`liteboot: internal error: ${e instanceof Error ? e.message : String(e)}${this.verbose ? '' : ' (run with --verbose for details)'}\n`);
    if (this.verbose && e instanceof Error && e.stack) err.write(e.stack + '\n');
    return 1;
  }
}

/** Parses a positive whole-number option, or says which option is wrong (a usage mistake). */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw usage(`${flag} takes a whole number >= 1, not "${value}"`);
  }
  return Number(value);
}

export function usage(message: string): LitebootError {
  return new LitebootError('USAGE', message);
}
