import { Option } from 'clipanion';
import { BaseCommand, CRL_REASONS, usage } from './base.js';

/** Values an option takes, where there is a short list (by long name). */
const VALUES: Record<string, string[]> = {
  '--wire': ['cbor', 'json'],
  '--reason': Object.keys(CRL_REASONS).filter((n) => n !== 'removeFromCRL'),
  '--response': ['cc', 'cs', 'ds', 'csr', 'ccs', 'auto'],
  '--format': ['cbor', 'json', 'p10', 'est'],
  '--key-type': ['p256', 'p384'],
  '--log-format': ['text', 'json'],
  '--log-level': ['debug', 'info', 'warn', 'error'],
};

interface CommandInfo {
  path: string;
  /** Every option name (`-o`, `--output`). */
  options: string[];
  /** Option names that take a value, with the value's placeholder. */
  valued: Map<string, string>;
  /** Short name to long name (`-o` to `--output`). */
  longOf: Map<string, string>;
}

/** Reads the registered commands from clipanion's definitions (usage lines with our placeholders). */
function commandInfos(defs: { path: string; usage: string; options: { definition: string }[] }[]): CommandInfo[] {
  const infos: CommandInfo[] = [];
  for (const d of defs) {
    const path = d.path.replace(/^liteboot\s*/, '').trim();
    if (path === '' || path.startsWith('-')) continue;
    const definitions = [...d.options.map((o) => o.definition), ...[...d.usage.matchAll(/[[<](-[^\]>]+)[\]>]/g)].map((m) => m[1]!)];
    const options = new Set<string>(['--help']);
    const valued = new Map<string, string>();
    const longOf = new Map<string, string>();
    for (const def of definitions) {
      const [names, value] = def.split(' ');
      const long = names!.split(',').find((n) => n.startsWith('--'));
      for (const n of names!.split(',')) {
        if (long && n !== long) longOf.set(n, long);
        options.add(n);
        if (value !== undefined) valued.set(n, value);
      }
    }
    infos.push({ path, options: [...options].sort(), valued, longOf });
  }
  return infos.sort((a, b) => a.path.localeCompare(b.path));
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A bash completion script (zsh runs it through bashcompinit). */
export function bashScript(infos: CommandInfo[]): string {
  const top = new Set<string>();
  const groups = new Map<string, string[]>();
  for (const i of infos) {
    const [w0, w1] = i.path.split(' ');
    top.add(w0!);
    if (w1 !== undefined) groups.set(w0!, [...(groups.get(w0!) ?? []), w1]);
  }
  // A placeholder that lists its values (`cbor|json`) completes to them, unless VALUES says more.
  const listed = new Map<string, string[]>(Object.entries(VALUES));
  for (const i of infos) for (const [n, ph] of i.valued) if (/^[a-z0-9-]+(\|[a-z0-9-]+)+$/.test(ph) && !listed.has(n)) listed.set(n, ph.split('|'));
  const lines = [
    '# liteboot completion for bash: eval "$(liteboot completion bash)" (generated from the registered commands)',
    '_liteboot() {',
    '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i w',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w=${COMP_WORDS[i]}',
    '    case $w in -*) continue ;; esac',
    '    if [[ -z $cmd ]]; then cmd=$w',
    `    else case " ${[...groups.keys()].join(' ')} " in *" $cmd "*) cmd="$cmd $w" ;; esac; break; fi`,
    '  done',
    '  case $cmd in',
    `    '') COMPREPLY=($(compgen -W ${q([...top, '--help', '--version'].join(' '))} -- "$cur")); return ;;`,
    ...[...groups].map(([g, subs]) => `    ${q(g)}) COMPREPLY=($(compgen -W ${q(subs.join(' '))} -- "$cur")); return ;;`),
    '  esac',
    '  local opts= valued=',
    '  case $cmd in',
    ...infos.map((i) => `    ${q(i.path)}) opts=${q(i.options.join(' '))}; valued=${q([...i.valued.keys()].join(' '))} ;;`),
    '  esac',
    '  case " $valued " in',
    '    *" $prev "*)',
    '      case $prev in',
    ...[...new Map(infos.flatMap((i) => [...i.longOf])).entries()].filter(([, long]) => listed.has(long)).map(([short, long]) => `        ${short}) prev=${long} ;;`),
    '      esac ;;',
    '  esac',
    '  case " $valued " in',
    '    *" $prev "*)',
    '      case $prev in',
    ...[...listed].map(([n, v]) => `        ${n}) COMPREPLY=($(compgen -W ${q(v.join(' '))} -- "$cur")) ;;`),
    '        --certs) COMPREPLY=($(compgen -d -- "$cur")) ;;',
    '        *) COMPREPLY=($(compgen -f -- "$cur")) ;;',
    '      esac',
    '      return ;;',
    '  esac',
    '  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
    `  elif [[ $cmd == completion ]]; then COMPREPLY=($(compgen -W 'bash zsh' -- "$cur"))`,
    '  else COMPREPLY=($(compgen -f -- "$cur")); fi',
    '}',
    'complete -F _liteboot liteboot',
  ];
  return lines.join('\n') + '\n';
}

export class CompletionCommand extends BaseCommand {
  static override paths = [['completion']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Tools',
    description: 'print a shell completion script (bash or zsh)',
    details: 'Generated from the registered commands and their options, so it always matches this liteboot. In zsh it goes through `bashcompinit`.',
    examples: [
      ['Complete in this bash session', 'eval "$($0 completion bash)"'],
      ['Install for zsh', '$0 completion zsh > ~/.zsh/liteboot.zsh; echo "source ~/.zsh/liteboot.zsh" >> ~/.zshrc'],
    ],
  });

  shell = Option.String({ name: 'shell' });

  protected async run(): Promise<number> {
    if (this.shell !== 'bash' && this.shell !== 'zsh') throw usage(`completion takes bash or zsh, not "${this.shell}"`);
    const script = bashScript(commandInfos(this.cli.definitions() as never));
    this.context.stdout.write(this.shell === 'bash' ? script : `#compdef liteboot\nautoload -U +X bashcompinit && bashcompinit\n${script}`);
    return 0;
  }
}
