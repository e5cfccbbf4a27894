/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4, as Prometheus
 * documents it in "Exposition formats"): HELP and TYPE lines, metric and label name syntax,
 * label value escapes, values, one block per family, no repeated series, and for histograms
 * cumulative buckets ending in `+Inf` equal to `_count`, with a `_sum`. Throws on the first
 * violation, naming the line.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help?: string;
  samples: Sample[];
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)$/;

function parseValue(v: string, where: string): number {
  // Prometheus reads values with Go's strconv.ParseFloat, for which NaN and Inf are any case:
  // prom-client writes `Nan` (util.js), e.g. for a default gauge with no sample since the last scrape.
  if (/^nan$/i.test(v)) return NaN;
  if (/^[+-]?inf$/i.test(v)) return v.startsWith('-') ? -Infinity : Infinity;
  if (!VALUE.test(v)) throw new Error(`${where}: bad value "${v}"`);
  return Number(v);
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?$/.exec(line);
  if (!m) throw new Error(`${where}: not a sample line: ${JSON.stringify(line)}`);
  const labels: Record<string, string> = {};
  if (m[2]) {
    let rest = m[2].slice(1, -1);
    while (rest.length > 0) {
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest);
      if (!l) throw new Error(`${where}: bad label syntax at ${JSON.stringify(rest)}`);
      if (!LABEL.test(l[1]!) || l[1]!.startsWith('__')) throw new Error(`${where}: bad label name ${l[1]}`);
      if (l[1]! in labels) throw new Error(`${where}: label ${l[1]} twice`);
      labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
      if (!l[3] && rest.length > 0) throw new Error(`${where}: labels not separated by commas`);
    }
  }
  return { name: m[1]!, labels, value: parseValue(m[3]!, where) };
}

/** The family a sample name belongs to, for each type's allowed suffixes. */
function belongs(sample: string, f: Family): boolean {
  if (f.type === 'histogram') return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`].includes(sample);
  if (f.type === 'summary') return [f.name, `${f.name}_sum`, `${f.name}_count`].includes(sample);
  return sample === f.name;
}

export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: Family | undefined;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line === '') return; // "Empty lines are ignored."
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(line);
      if (!m) return; // a comment
      const [, kind, name, rest = ''] = m;
      if (!METRIC.test(name!)) throw new Error(`${where}: bad metric name ${name}`);
      let f = families.get(name!);
      if (f && f !== current) throw new Error(`${where}: ${name} appears in two blocks`);
      if (!f) {
        if (current && current.samples.length === 0 && current.name !== name) {
          /* a family with no samples yet (a counter never incremented) is allowed */
        }
        f = { name: name!, type: 'untyped', samples: [] };
        families.set(name!, f);
        current = f;
        (f as Family & { typed?: boolean }).typed = false;
      }
      if (kind === 'TYPE') {
        if ((f as Family & { typed?: boolean }).typed) throw new Error(`${where}: second TYPE for ${name}`);
        if (f.samples.length > 0) throw new Error(`${where}: TYPE for ${name} after its samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`${where}: bad type ${rest}`);
        f.type = rest as Family['type'];
        (f as Family & { typed?: boolean }).typed = true;
      } else {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`${where}: bad escape in HELP`);
        f.help = rest;
      }
      return;
    }
    const s = parseSample(line, where);
    if (!current || !belongs(s.name, current)) throw new Error(`${where}: sample ${s.name} outside its family's block (TYPE first, one block per family)`);
    const key = `${s.name}{${Object.entries(s.labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    if (series.has(key)) throw new Error(`${where}: series ${key} twice`);
    series.add(key);
    if (current.type === 'counter' && !(s.value >= 0)) throw new Error(`${where}: counter ${s.name} is ${s.value}`);
    current.samples.push(s);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([parseValue(le, `${f.name} le`), s.value]);
    } else if (le !== undefined) throw new Error(`${f.name}: le on ${s.name}`);
    else if (s.name.endsWith('_sum')) g.sum = s.value;
    else g.count = s.value;
  }
  for (const [key, g] of groups) {
    const at = `${f.name}${key}`;
    if (g.sum === undefined || g.count === undefined) throw new Error(`${at}: no _sum or _count`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${at}: bucket bounds not increasing`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${at}: bucket counts not cumulative`);
    }
    const last = g.buckets[g.buckets.length - 1];
    if (!last || last[0] !== Infinity) throw new Error(`${at}: no +Inf bucket`);
    if (last[1] !== g.count) throw new Error(`${at}: +Inf bucket ${last[1]} is not _count ${g.count}`);
  }
}

/** The value of one series (0 when absent: a counter never incremented has no sample). */
export function value(families: Map<string, Family>, family: string, labels: Record<string, string> = {}, sample = family): number {
  const f = families.get(family);
  if (!f) throw new Error(`no family ${family}`);
  const s = f.samples.find((x) => x.name === sample && Object.keys(labels).every((k) => x.labels[k] === labels[k]) && Object.keys(x.labels).length === Object.keys(labels).length);
  return s?.value ?? 0;
}
