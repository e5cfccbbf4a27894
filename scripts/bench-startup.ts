/**
 * Start-up time of the CLI against `node -e 0` (issue 16: at most 2x, median). Runs each command
 * `--runs` times, interleaved so that load on the machine hits all alike, and prints JSON.
 *
 *   node dist/scripts/bench-startup.js [--runs 20] [--bin bin/liteboot.js]
 *
 * `cert status` runs in a directory with a CA and a bootstrap credential, against a closed port: it
 * loads, parses, reads its files and fails at connect, which is the start-up cost of every call.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name: string, d: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : d);
const runs = Number(opt('--runs', '20'));
const bin = resolve(opt('--bin', 'bin/liteboot.js'));

const dir = mkdtempSync(join(tmpdir(), 'liteboot-startup-'));
try {
  const setup = (a: string[]) => spawnSync(process.execPath, [bin, ...a], { cwd: dir, encoding: 'utf8' });
  setup(['setup-ca', 'localhost']);
  setup(['setup-bootstrap']);
  // The floor for any client command: Node's https with the same credentials, nothing of ours.
  const floor = join(dir, 'floor.mjs');
  writeFileSync(
    floor,
    `import { Agent, request } from 'node:https'; import { readFileSync } from 'node:fs';
const agent = new Agent({ ca: readFileSync('certs/CA.crt'), cert: readFileSync('certs/BOOTSTRAP.crt'), key: readFileSync('certs/BOOTSTRAP.key') });
request({ host: 'localhost', port: 1, agent, path: '/api/v1/cs/1' }).on('error', () => {}).end();
`,
  );
  const cases: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    'bare https request (floor)': [floor],
    'liteboot --version': [bin, '--version'],
    'liteboot cert status': [bin, 'cert', 'status', '1', '--hostname', 'localhost', '--port', '1'],
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, argv] of Object.entries(cases)) {
      const t0 = process.hrtime.bigint();
      spawnSync(process.execPath, argv, { cwd: dir, stdio: 'ignore' });
      times[name]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const base = median(times['node -e 0']!);
  const result = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, { medianMs: Math.round(median(v) * 10) / 10, ratio: Math.round((median(v) / base) * 100) / 100 }]));
  process.stdout.write(JSON.stringify({ runs, bin, results: result }, null, 2) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
