import type { Cli, CommandClass } from 'clipanion';
import { version } from './version.js';

type Loader = () => Promise<CommandClass>;

/**
 * Every command, by path, and how to load it. A command imports only its own module (and what
 * that imports): `liteboot cert status` never loads sql.js, prom-client or the store. Everything
 * is loaded only for the full help, completion and a check that this table matches the classes.
 * The order is the order of `liteboot --help` within each category.
 */
export const MANIFEST: Record<string, Loader> = {
  // set-up
  'setup-ca': async () => (await import('./commands/setup-ca.js')).SetupCaCommand,
  'setup-bootstrap': async () => (await import('./commands/setup-bootstrap.js')).SetupBootstrapCommand,
  'operator create': async () => (await import('./commands/operator/create.js')).OperatorCreateCommand,
  'setup-ocsp': async () => (await import('./commands/setup-ocsp.js')).SetupOcspCommand,
  'cakey getpub': async () => (await import('./commands/cakey/getpub.js')).CakeyGetpubCommand,
  'cakey encrypt': async () => (await import('./commands/cakey/encrypt.js')).CakeyEncryptCommand,
  'cakey decrypt': async () => (await import('./commands/cakey/encrypt.js')).CakeyDecryptCommand,
  'config check': async () => (await import('./commands/config/check.js')).ConfigCheckCommand,
  // server
  up: async () => (await import('./commands/up.js')).UpCommand,
  'server start': async () => (await import('./commands/server/start.js')).ServerStartCommand,
  // devices and certificates
  'new-device': async () => (await import('./commands/new-device.js')).NewDeviceCommand,
  'device status': async () => (await import('./commands/device/status.js')).DeviceStatusCommand,
  'device rekey': async () => (await import('./commands/device/rekey.js')).DeviceRekeyCommand,
  'device list': async () => (await import('./commands/device/list.js')).DeviceListCommand,
  'device register': async () => (await import('./commands/device/register.js')).DeviceRegisterCommand,
  'device allow': async () => (await import('./commands/device/allow.js')).DeviceAllowCommand,
  'device disallow': async () => (await import('./commands/device/allow.js')).DeviceDisallowCommand,
  'cert status': async () => (await import('./commands/cert/status.js')).CertStatusCommand,
  'cert get': async () => (await import('./commands/cert/get.js')).CertGetCommand,
  'cert revoke': async () => (await import('./commands/cert/revoke.js')).CertRevokeCommand,
  crl: async () => (await import('./commands/crl.js')).CrlCommand,
  'cloud settings': async () => (await import('./commands/cloud/settings.js')).CloudSettingsCommand,
  // operations
  'audit verify': async () => (await import('./commands/audit/verify.js')).AuditVerifyCommand,
  'audit show': async () => (await import('./commands/audit/show.js')).AuditShowCommand,
  'db backup': async () => (await import('./commands/db/backup.js')).DbBackupCommand,
  'db copy': async () => (await import('./commands/db/copy.js')).DbCopyCommand,
  'db migrate': async () => (await import('./commands/db/migrate.js')).DbMigrateCommand,
  status: async () => (await import('./commands/status.js')).StatusCommand,
  // tools
  inspect: async () => (await import('./commands/inspect.js')).InspectCommand,
  'decode-cbor': async () => (await import('./commands/decode-cbor.js')).DecodeCborCommand,
  completion: async () => (await import('./commands/completion.js')).CompletionCommand,
};

/**
 * What an option's value is called in usage lines, instead of clipanion's `#0`: by long name,
 * else the long name in capitals (`--port PORT`).
 */
const PLACEHOLDERS: Record<string, string> = {
  '--count': 'N', '--concurrency': 'N', '--days': 'N', '--retries': 'N',
  '--certs': 'DIR', '--config': 'FILE', '--db': 'PATH|URL', '--from': 'PATH|URL', '--to': 'PATH|URL', '--file': 'FILE', '--output': 'FILE', '--der': 'FILE',
  '--password-file': 'FILE', '--cert': 'FILE', '--input': 'FILE', '--audit-log': 'FILE', '--crl-file': 'FILE',
  '--hostname': 'HOST', '--listen': 'ADDRESS', '--metrics-listen': 'HOST:PORT', '--mport': 'PORT', '--http-port': 'PORT',
  '--operator': 'NAME', '--name': 'NAME', '--device': 'UUID', '--serial': 'SERIAL', '--san': 'NAME',
  '--wire': 'cbor|json', '--reason': 'REASON', '--response': 'KIND', '--format': 'FORMAT', '--key-type': 'TYPE',
  '--org': 'ORG', '--ou': 'OU', '--cn': 'CN', '--expiring': 'DAYS', '--hubname': 'NAME', '--resourcegroup': 'NAME',
  '--mqttport': 'PORT', '--log-format': 'text|json', '--log-level': 'LEVEL',
};

export function placeholder(names: string[]): string {
  const long = names.find((n) => n.startsWith('--')) ?? names[0]!;
  return PLACEHOLDERS[long] ?? long.replace(/^-+/, '').replace(/-/g, '_').toUpperCase();
}

interface BuilderOption { names: string[]; description?: string; arity: number }
interface Builder { options: BuilderOption[]; usage(opts?: object): { usage: string; options: { definition: string }[] } }
interface Spec { definition(b: unknown, key: string): void; transformer(b: unknown, key: string, state: unknown, context: unknown): unknown }
interface Registration { specs: Map<string, Spec>; builder: Builder }

/**
 * One place for what clipanion leaves out of `--help`: real placeholders in usage lines and each
 * option's default (read from the option itself, so it cannot drift from the code).
 */
function polishHelp(cli: Cli): void {
  const registrations = (cli as unknown as { registrations: Map<CommandClass, Registration> }).registrations;
  for (const { specs, builder } of registrations.values()) {
    for (const [key, spec] of specs) {
      let names: string[] | undefined;
      const probe = { addOption: (o: { names: string[] }) => (names = o.names), addPositional() {}, addRest() {}, addProxy() {} };
      spec.definition(probe, key);
      if (!names) continue;
      let initial: unknown;
      try {
        initial = spec.transformer(builder, key, { options: [], positionals: [] }, { env: {} });
      } catch {
        continue;
      }
      const opt = builder.options.find((o) => o.names[0] === names![0]);
      const shown = typeof initial === 'string' ? (initial === '' ? '""' : initial) : typeof initial === 'number' || initial === true ? String(initial) : undefined;
      if (opt && shown !== undefined && !/\(default/.test(opt.description ?? '')) opt.description = `${opt.description ?? ''} (default: ${shown})`.trim();
    }
    const usage = builder.usage.bind(builder);
    builder.usage = (opts?: object) => {
      const r = usage(opts);
      const fix = (s: string) => {
        for (const o of builder.options) if (o.arity === 1) s = s.split(`${o.names.join(',')} #0`).join(`${o.names.join(',')} ${placeholder(o.names)}`);
        return s;
      };
      return { ...r, usage: fix(r.usage), options: r.options.map((o) => ({ ...o, definition: fix(o.definition) })) };
    };
  }
}

async function makeCli(classes: CommandClass[]): Promise<Cli> {
  // Loaded here, not at the top: `liteboot --version` and an unknown command need no parser.
  const { Builtins, Cli } = await import('clipanion');
  const cli = new Cli({ binaryLabel: 'liteboot', binaryName: 'liteboot', binaryVersion: version, enableColors: false });
  for (const c of classes) cli.register(c);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  polishHelp(cli);
  return cli;
}

/** Every command class, checked against the manifest (a path that does not match is a bug here). */
export async function loadAll(): Promise<CommandClass[]> {
  const classes: CommandClass[] = [];
  for (const [path, load] of Object.entries(MANIFEST)) {
    const c = await load();
    const paths = (c as unknown as { paths?: string[][] }).paths ?? [];
    if (!paths.some((p) => p.join(' ') === path)) throw new Error(`manifest entry "${path}" loads a command whose paths are ${JSON.stringify(paths)}`);
    classes.push(c);
  }
  return classes;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** At most three command paths near what was typed, nearest first. */
export function nearCommands(typed: string): string[] {
  const paths = Object.keys(MANIFEST);
  const scored = paths.map((p) => {
    // Compare with the same number of words, so that `cert stauts` meets `cert status` and `stauts` meets `status`.
    const words = typed.split(' ').length;
    const d = Math.min(distance(typed, p), distance(typed, p.split(' ').slice(0, words).join(' ')) + (p.split(' ').length > words ? 1 : 0));
    // A prefix (`decode` for `decode-cbor`) is as near as a typo.
    return { p, d: p.startsWith(typed) ? Math.min(d, 1) : d };
  });
  const limit = Math.max(2, Math.floor(typed.length / 3));
  return scored
    .filter((s) => s.d <= limit)
    .sort((x, y) => x.d - y.d || x.p.localeCompare(y.p))
    .slice(0, 3)
    .map((s) => s.p);
}

type Resolution = { kind: 'command'; path: string } | { kind: 'all' } | { kind: 'unknown'; typed: string } | { kind: 'group'; group: string; help: boolean };

/** Which command argv names, from its leading words (no module loaded). */
function resolveCommand(argv: string[]): Resolution {
  const [w0, w1] = argv;
  // Options before the command (clipanion allows them), no command at all, or --help: load everything.
  if (w0 === undefined || w0.startsWith('-')) return { kind: 'all' };
  // `liteboot help [command...]` as git and step have it.
  if (w0 === 'help') return w1 === undefined ? { kind: 'all' } : resolveCommand([...argv.slice(1), '--help']);
  if (w1 !== undefined && !w1.startsWith('-') && MANIFEST[`${w0} ${w1}`]) return { kind: 'command', path: `${w0} ${w1}` };
  if (MANIFEST[w0]) return { kind: 'command', path: w0 };
  if (Object.keys(MANIFEST).some((p) => p.startsWith(`${w0} `))) {
    if (w1 === undefined || w1.startsWith('-')) return { kind: 'group', group: w0, help: w1 === '-h' || w1 === '--help' };
    return { kind: 'unknown', typed: `${w0} ${w1}` };
  }
  return { kind: 'unknown', typed: w0 };
}

/** A clipanion parse error as one line: what is wrong, and the command's usage. */
function syntaxError(cli: Cli, e: unknown, path: string | undefined): string {
  const err = e as { name?: string; message?: string; candidates?: { usage: string; reason: string | null }[] };
  if (err.name === 'UnknownSyntaxError' && err.candidates) {
    const c = err.candidates.filter((x) => path === undefined || x.usage.startsWith(`liteboot ${path}`));
    const reason = c.find((x) => x.reason)?.reason?.replace(/\.$/, '');
    const usage = c[0]?.usage ? fixUsage(cli, c[0].usage) : undefined;
    return `liteboot: ${reason ? plainReason(reason) : 'wrong arguments'}${usage ? `; usage: ${usage}` : ''}`;
  }
  return `liteboot: ${(err.message ?? String(e)).split('\n')[0]}`;
}

/** The candidate usage in a parse error is computed before polishHelp's patch: fix it the same way. */
function fixUsage(cli: Cli, usage: string): string {
  const registrations = (cli as unknown as { registrations: Map<CommandClass, Registration> }).registrations;
  for (const { builder } of registrations.values()) for (const o of builder.options) if (o.arity === 1) usage = usage.split(`${o.names.join(',')} #0`).join(`${o.names.join(',')} ${placeholder(o.names)}`);
  return usage;
}

/** Clipanion's reasons in our words: `Unsupported option name ("--x")` is `unknown option --x`. */
function plainReason(reason: string): string {
  const quoted = /\("(.*)"\)/.exec(reason)?.[1];
  if (/^Unsupported option name/.test(reason)) return `unknown option ${quoted ?? ''}`.trim();
  if (/^Extraneous positional argument/.test(reason)) return `unexpected argument ${quoted ?? ''}`.trim();
  if (/^Not enough positional arguments/.test(reason)) return 'missing argument';
  return reason.charAt(0).toLowerCase() + reason.slice(1);
}

/** Runs the CLI: 0 success, 1 an error, 2 a usage mistake (unknown command, bad flag). */
export async function main(argv: string[]): Promise<number> {
  // The fast path: nothing to load.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const r = resolveCommand(argv);
  if (argv[0] === 'help') argv = argv.length === 1 ? ['--help'] : [...argv.slice(1), '--help'];
  if (r.kind === 'unknown') {
    // `devcie list`: two words may be a mistyped two-word command; else the first word alone.
    const [w0, w1] = argv;
    const two = !r.typed.includes(' ') && w1 !== undefined && !w1.startsWith('-') ? nearCommands(`${w0} ${w1}`) : [];
    const typed = two.length > 0 ? `${w0} ${w1}` : r.typed;
    const near = two.length > 0 ? two : nearCommands(r.typed);
    process.stderr.write(`liteboot: unknown command ${typed}; ${near.length > 0 ? `did you mean: ${near.join(', ')}` : 'liteboot --help lists the commands'}\n`);
    return 2;
  }
  if (r.kind === 'group') {
    const paths = Object.keys(MANIFEST).filter((p) => p.startsWith(`${r.group} `));
    if (r.help) {
      // `liteboot cert --help`: the list of the group's commands, as `liteboot --help` shows them.
      const cli = await makeCli(await Promise.all(paths.map((p) => MANIFEST[p]!())));
      process.stdout.write(cli.usage(null));
      return 0;
    }
    const subs = paths.map((p) => p.slice(r.group.length + 1));
    process.stderr.write(`liteboot: ${r.group} needs a subcommand: ${subs.join(', ')}\n`);
    return 2;
  }
  // cbor-x's native decoder (cbor-extract) costs a third of a status command's start-up and
  // gains nothing on bodies of a few hundred bytes; the decoded values are the same. The server
  // keeps it.
  if (r.kind === 'command' && r.path !== 'server start' && r.path !== 'up') process.env.CBOR_NATIVE_ACCELERATION_DISABLED ??= 'true';
  // `completion` describes every command, so it loads them all.
  const cli = await makeCli(r.kind === 'command' && r.path !== 'completion' ? [await MANIFEST[r.path]!()] : await loadAll());
  const context = { ...(cli.constructor as typeof Cli).defaultContext, colorDepth: 1 };
  let command;
  try {
    command = cli.process(argv, context);
  } catch (e) {
    process.stderr.write(syntaxError(cli, e, r.kind === 'command' ? r.path : undefined) + '\n');
    return 2;
  }
  return cli.run(command, context);
}

process.exitCode = await main(process.argv.slice(2));
