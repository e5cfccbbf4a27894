import { readFileSync } from 'node:fs';
import type { ReadStream } from 'node:tty';
import { Option } from 'clipanion';
import type { CaMaterial, CertsDir } from '../ca/certs-dir.js';
import { FILES } from '../ca/certs-dir.js';
import { LitebootError } from '../errors.js';
import { BaseCommand } from './base.js';

export const PASSWORD_ENV = 'LITEBOOT_CA_PASSWORD';

/** Where a password may come from, in this order: the file, the environment, a terminal prompt. */
export interface PasswordSources {
  file?: string;
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * The CA key's password: the first line of `--password-file` (its line ending stripped), then
 * `$LITEBOOT_CA_PASSWORD`, then a prompt without echo when standard input is a terminal (asked
 * twice when `confirm`, for a new password). Undefined when none of these is there.
 */
export async function resolvePassword(s: PasswordSources, what: string, confirm: boolean): Promise<string | undefined> {
  if (s.file !== undefined) {
    let text;
    try {
      text = readFileSync(s.file, 'utf8');
    } catch (e) {
      throw new LitebootError('FILE_UNREADABLE', `cannot read the password file ${s.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return nonEmpty(text.split('\n')[0]!.replace(/\r$/, ''), `the first line of ${s.file}`);
  }
  const env = s.env[PASSWORD_ENV];
  if (env !== undefined) return nonEmpty(env, `$${PASSWORD_ENV}`);
  const tty = s.stdin as ReadStream;
  if (!tty.isTTY || typeof tty.setRawMode !== 'function') return undefined;
  const first = nonEmpty(await prompt(tty, s.stderr, `Password for ${what}: `), 'the password');
  if (confirm && (await prompt(tty, s.stderr, `Again, to confirm: `)) !== first) {
    throw new LitebootError('BAD_PASSWORD', 'the two passwords differ; nothing was changed');
  }
  return first;
}

function nonEmpty(p: string, where: string): string {
  if (p === '') throw new LitebootError('BAD_PASSWORD', `${where} is empty; the CA key needs a password`);
  return p;
}

/** Reads one line from a terminal in raw mode, echoing nothing. Ctrl-C or Ctrl-D gives up. */
function prompt(tty: ReadStream, out: NodeJS.WritableStream, question: string): Promise<string> {
  // Echo off before the prompt shows: whatever is typed once it is visible must not be echoed.
  tty.setRawMode(true);
  out.write(question);
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (): void => {
      tty.off('data', onData);
      tty.setRawMode(false);
      tty.pause();
      out.write('\n');
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(line);
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          finish();
          reject(new LitebootError('BAD_PASSWORD', 'no password given'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    tty.on('data', onData);
    tty.resume();
  });
}

/** A command that signs with the CA key: `--password-file`, and the password resolved once, only if CA.key is encrypted. */
export abstract class CaCommand extends BaseCommand {
  passwordFile = Option.String('--password-file', { description: `File whose first line is the CA key's password (else $${PASSWORD_ENV}, else a prompt on a terminal)` });

  private password?: Promise<string | undefined>;

  protected passwordSources(): PasswordSources {
    return { file: this.passwordFile, env: process.env, stdin: this.context.stdin, stderr: this.context.stderr };
  }

  /** The password of CA.key when it is encrypted (undefined when it is not, or none was given: loading then says so). */
  protected caPassword(certs: CertsDir = this.certsDir()): Promise<string | undefined> {
    this.password ??= certs.caKeyEncrypted() ? resolvePassword(this.passwordSources(), `the CA key ${certs.path(FILES.caKey)}`, false) : Promise.resolve(undefined);
    return this.password;
  }

  /** A new password for CA.key, from the same sources (asked twice on a terminal), or one line saying how to give it. */
  protected async newCaPassword(certs: CertsDir): Promise<string> {
    const p = await resolvePassword(this.passwordSources(), `the CA key ${certs.path(FILES.caKey)}`, true);
    if (p === undefined) throw new LitebootError('BAD_PASSWORD', `no password for the CA key: give one with --password-file FILE or $${PASSWORD_ENV} (or run on a terminal to be asked)`);
    return p;
  }

  protected async loadCa(): Promise<CaMaterial> {
    const certs = this.certsDir();
    return certs.loadCa(await this.caPassword(certs));
  }
}
