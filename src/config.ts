import { hostname as systemHostname } from 'node:os';

/**
 * Hostname for the set-up and device commands (CLI.md): the first argument, then $CAHOSTNAME,
 * then the system host name.
 */
export function scriptHostname(arg: string | undefined, env: NodeJS.ProcessEnv): string {
  if (arg && arg.length > 0) return arg;
  if (env.CAHOSTNAME && env.CAHOSTNAME.length > 0) return env.CAHOSTNAME;
  return systemHostname() || 'localhost';
}
