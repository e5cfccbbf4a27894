import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { BIN, liteboot, openssl, ROOT, tempDir } from '../helpers/run.js';
import { curl, identity, makeCaDir, startServer, type TestServer } from '../helpers/server.js';

const UUID = '56d38f73-3f6f-4a59-86bc-d315a1ccc634';
const JQ = '/usr/bin/jq';

/** Runs a shell pipeline with `liteboot` standing for the real CLI. */
function sh(script: string, cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `liteboot() { "${process.execPath}" "${BIN}" "$@"; }\n${script}`], { cwd, encoding: 'utf8', env: { ...process.env, CAHOSTNAME: '' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('--json through jq 1.6: serials come back exact (issue 16, finding 1)', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    assert.equal(await s.stop(), 0);
    s.cleanup();
  });
  const lb = (args: string[], input?: string) => liteboot([...args, '--hostname', 'localhost', '--port', String(s.port)], { cwd: s.dir, input });
  const enrol = () => {
    const r = liteboot(['new-device', 'localhost', '--port', String(s.port)], { cwd: s.dir });
    assert.equal(r.code, 0, r.stderr);
    const [, uuid, serial] = /enrolled ([0-9a-f-]{36}) \(serial (\d+)\)/.exec(r.stdout)!;
    return { uuid: uuid!, serial: serial! };
  };

  test('device status --json | jq -r .serials[0], then cert status and cert revoke with that value', () => {
    assert.match(spawnSync(JQ, ['--version'], { encoding: 'utf8' }).stdout, /^jq-1\.6/, 'the jq that rounds 64-bit numbers');
    const { uuid, serial } = enrol();
    // what openssl says the certificate's serial is, and a 64-bit one that a double cannot hold
    const fromOpenssl = BigInt('0x' + openssl(['x509', '-in', join(s.dir, 'certs', `${uuid}.crt`), '-noout', '-serial']).stdout.trim().slice(7)).toString();
    assert.equal(serial, fromOpenssl);
    assert.ok(BigInt(serial) > 2n ** 53n, 'the serial is beyond a double');
    const port = `--hostname localhost --port ${s.port}`;
    const got = sh(`liteboot device status ${uuid} ${port} --json | ${JQ} -r '.serials[0]'`, s.dir);
    assert.equal(got.stdout, `${serial}\n`, got.stderr);
    const viaJq = got.stdout.trim();
    const st = lb(['cert', 'status', viaJq, '--json']);
    assert.equal(st.code, 0, st.stderr);
    assert.deepEqual(JSON.parse(st.stdout), { serial, status: 'valid' });
    const rv = lb(['cert', 'revoke', viaJq, '--operator', 'alice', '--reason', 'keyCompromise']);
    assert.equal(rv.code, 0, rv.stderr);
    assert.equal(rv.stdout, `revoked ${serial}\n`);
    const after = sh(`liteboot cert status ${serial} ${port} --json | ${JQ} -r '.serial + " " + .status'`, s.dir);
    assert.equal(after.stdout, `${serial} revoked\n`);
    // the server's own JSON is unchanged (the wire contract): PascalCase, bare numbers
    assert.equal(curl(s, identity(s.dir, 'BOOTSTRAP'), `/api/v1/ds/${uuid}`).body.toString(), '{"Status":0,"Serials":null}\n');
  });

  test('several serials, or - for standard input: one answer each, in order; the exit status sums them up', () => {
    const a = enrol();
    const b = enrol();
    assert.equal(lb(['cert', 'revoke', b.serial, '--operator', 'alice', '--reason', '5']).code, 0);
    const two = lb(['cert', 'status', a.serial, b.serial]);
    assert.equal(two.code, 3, 'one is revoked');
    assert.equal(two.stdout, `${a.serial}: valid\n${b.serial}: revoked\n`);
    const piped = lb(['cert', 'status', '-', '--json'], `${a.serial}\n\n${b.serial}\n`);
    assert.equal(piped.code, 3);
    assert.deepEqual(JSON.parse(piped.stdout), [{ serial: a.serial, status: 'valid' }, { serial: b.serial, status: 'revoked' }]);
    // an unknown serial is named; the others are still answered
    const unknown = lb(['cert', 'status', a.serial, '1796153192057603597']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stdout, `${a.serial}: valid\n`);
    // (the original server's answer for a serial it does not know)
    assert.equal(unknown.stderr, 'liteboot: 1796153192057603597: the server refused (HTTP 400): invalid serial number\n');

    const ds = lb(['device', 'status', '-', '--json'], `${a.uuid}\n${b.uuid.toUpperCase()}\n`);
    assert.equal(ds.code, 0, ds.stderr);
    assert.deepEqual(JSON.parse(ds.stdout), [{ device: a.uuid, serials: [a.serial] }, { device: b.uuid, serials: [] }]);
    const one = lb(['device', 'status', a.uuid, '--json']);
    assert.deepEqual(JSON.parse(one.stdout), { device: a.uuid, serials: [a.serial] });
    const text = lb(['device', 'status', a.uuid, b.uuid]);
    assert.equal(text.stdout, `${a.uuid}: 1 valid certificate: ${a.serial}\n${b.uuid}: no valid certificates\n`);
  });

  test('cloud settings, cert get and cakey getpub --json: camelCase like the rest', () => {
    const r = lb(['cloud', 'settings', '--json']);
    assert.deepEqual(JSON.parse(r.stdout), { hubname: 'test-hub', port: 8883 });
    const { uuid, serial } = enrol();
    const got = lb(['cert', 'get', serial, '--json']);
    assert.deepEqual(JSON.parse(got.stdout), { serial, certificate: readFileSync(join(s.dir, 'certs', `${uuid}.crt`), 'utf8') });
    const pub = liteboot(['cakey', 'getpub', '--json'], { cwd: s.dir });
    const j = JSON.parse(pub.stdout) as { publicKey: string; sha256: string };
    const der = openssl(['pkey', '-pubin', '-outform', 'DER'], { input: j.publicKey });
    assert.equal(der.code, 0, der.stderr);
    assert.equal(j.sha256, createHash('sha256').update(der.out).digest('hex'));
    assert.equal(j.publicKey, openssl(['x509', '-in', join(s.dir, 'certs', 'CA.crt'), '-noout', '-pubkey']).stdout);
  });
});

describe('errors: one line, exit 2 for usage, 1 otherwise (finding 5)', () => {
  const t = tempDir('liteboot-cli-');
  const ca = join(t.dir, 'ca');
  before(async () => {
    mkdirSync(join(t.dir, 'empty', 'certs'), { recursive: true });
    mkdirSync(ca);
    await makeCaDir(ca);
  });
  after(() => t.cleanup());

  test('a table of mistakes: the exact line and exit status', () => {
    const empty = join(t.dir, 'empty');
    const cases: [string, string[], number, string][] = [
      [empty, ['stauts'], 2, 'liteboot: unknown command stauts; did you mean: status\n'],
      [empty, ['cert', 'stauts', '1'], 2, 'liteboot: unknown command cert stauts; did you mean: cert status\n'],
      [empty, ['devcie', 'list'], 2, 'liteboot: unknown command devcie list; did you mean: device list\n'],
      [empty, ['decode', '-i', 'x'], 2, 'liteboot: unknown command decode; did you mean: decode-cbor\n'],
      [empty, ['frobnicate'], 2, 'liteboot: unknown command frobnicate; liteboot --help lists the commands\n'],
      [empty, ['device'], 2, 'liteboot: device needs a subcommand: status, rekey, list, register, allow, disallow\n'],
      [empty, ['decode-cbor'], 2, 'liteboot: decode-cbor needs -i FILE (the CBOR body; - for standard input)\n'],
      [empty, ['decode-cbor', '-i', 'certs'], 1, 'liteboot: cannot read certs: is a directory\n'],
      [empty, ['inspect', 'certs'], 1, 'liteboot: cannot read certs: is a directory\n'],
      [empty, ['inspect', 'nope.crt'], 1, 'liteboot: cannot read nope.crt: not found\n'],
      [empty, ['device', 'list'], 1, `liteboot: no database at ${join(empty, 'CADB.db')}: run liteboot where the server keeps CADB.db, or pass --db FILE\n`],
      [empty, ['device', 'status', UUID], 1, `liteboot: the CA certificate is not at ${join(empty, 'certs', 'CA.crt')}: copy CA.crt there or run \`liteboot setup-ca\` (or pass --certs DIR)\n`],
      [empty, ['new-device', '--wire', 'xml'], 2, 'liteboot: --wire must be cbor or json, not "xml"\n'],
      [empty, ['cert', 'status', '1', '--wire', 'xml'], 2, 'liteboot: --wire must be cbor or json, not "xml"\n'],
      [empty, ['cert', 'revoke', '1', '--operator', 'alice', '--reason', 'removeFromCRL'], 2, 'liteboot: --reason removeFromCRL (8) is only for delta CRLs; liteboot does not accept it\n'],
      [empty, ['cert', 'revoke', '1', '--operator', 'alice', '--reason', '7'], 2, 'liteboot: --reason 7 is not an RFC 5280 reason (the code is unassigned)\n'],
      [empty, ['cert', 'revoke', '1', '--operator', 'alice', '--reason', 'stolen'], 2, 'liteboot: --reason must be an RFC 5280 reason: unspecified (0), keyCompromise (1), cACompromise (2), affiliationChanged (3), superseded (4), cessationOfOperation (5), certificateHold (6), privilegeWithdrawn (9), aACompromise (10); not "stolen"\n'],
      [empty, ['cert', 'status', '1', '--bogus'], 2, 'liteboot: unknown option --bogus; usage: liteboot cert status [--certs DIR] [--verbose] [--hostname HOST] [--port PORT] [--config FILE] [--wire cbor|json] [--json] ...\n'],
      [empty, ['cert', 'get'], 2, 'liteboot: missing argument; usage: liteboot cert get [--certs DIR] [--verbose] [--hostname HOST] [--port PORT] [--config FILE] [--wire cbor|json] [-o,--output FILE] [--json] <serial>\n'],
      [empty, ['cert', 'status'], 2, 'liteboot: give one or more serials (or - to read them from standard input)\n'],
    ];
    for (const [cwd, args, code, line] of cases) {
      const r = liteboot(args, { cwd });
      assert.equal(r.stderr, line, args.join(' '));
      assert.equal(r.code, code, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });

  test('a key that is not a key: the file named, no OpenSSL text, no "internal error"', () => {
    writeFileSync(join(ca, 'certs', 'BOOTSTRAP.key'), 'not a key\n');
    const r = liteboot(['cert', 'status', '1', '--hostname', 'localhost', '--port', '1'], { cwd: ca });
    assert.equal(r.stderr, `liteboot: ${join(ca, 'certs', 'BOOTSTRAP.key')} is not a private key (PEM/DER) liteboot can read\n`);
    assert.equal(r.code, 1);
  });

  test('--version loads nothing; --help shows placeholders and defaults, never #0', () => {
    const v = liteboot(['--version'], { cwd: t.dir });
    assert.equal(v.stdout, `${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`);
    const all = liteboot(['--help'], { cwd: t.dir });
    assert.equal(all.code, 0, all.stderr);
    for (const c of ['cert status', 'config check', 'completion', 'device list', 'server start']) assert.ok(all.stdout.includes(`liteboot ${c}`), c);
    assert.doesNotMatch(all.stdout, /#0/);
    const nd = liteboot(['new-device', '--help'], { cwd: t.dir });
    assert.match(nd.stdout, /--count N /);
    assert.match(nd.stdout, /--port PORT /);
    assert.doesNotMatch(nd.stdout, /#0/);
    const cs = liteboot(['cert', 'status', '--help'], { cwd: t.dir });
    assert.match(cs.stdout, /--certs DIR +Directory of certificates and keys \(default: certs\)\n/);
    assert.match(cs.stdout, /--wire cbor\|json +Request format: cbor \(as devices do\) or json \(default: cbor\)\n/);
  });
});

describe('start-up: a command loads only what it uses (finding 6)', () => {
  const t = tempDir('liteboot-load-');
  before(async () => makeCaDir(t.dir));
  after(() => t.cleanup());
  const hook = pathToFileURL(join(ROOT, 'dist', 'test', 'helpers', 'trace-imports.js')).href;
  const loaded = (args: string[]): string[] => {
    const trace = join(t.dir, `trace-${args.join('-').replace(/\W/g, '')}.txt`);
    writeFileSync(trace, '');
    spawnSync(process.execPath, ['--import', hook, BIN, ...args], { cwd: t.dir, env: { ...process.env, LITEBOOT_TRACE_IMPORTS: trace }, encoding: 'utf8' });
    return [...new Set(readFileSync(trace, 'utf8').split('\n').filter((l) => l !== ''))];
  };

  test('cert status and device status: no store, sql.js, prom-client, server or ASN.1 schemas', () => {
    for (const args of [['cert', 'status', '1'], ['device', 'status', UUID]]) {
      const urls = loaded([...args, '--hostname', 'localhost', '--port', '1']);
      assert.ok(urls.some((u) => u.endsWith(`/dist/src/commands/${args[0]}/status.js`)), `${args.join(' ')} was traced`);
      const bad = urls.filter((u) => /sql\.js|prom-client|node_modules\/pg|@peculiar|\/src\/store\/|\/src\/server\/|\/src\/metrics|\/src\/asn1\/certificate|\/src\/ca\/certs-dir|\/commands\/(?!base|client-base|cert\/status|device\/status)/.test(u));
      assert.deepEqual(bad, [], args.join(' '));
    }
  });

  test('--version loads neither clipanion nor any command', () => {
    const urls = loaded(['--version']);
    assert.deepEqual(urls.filter((u) => /clipanion|\/commands\//.test(u)), []);
  });
});

describe('config check (finding 7)', () => {
  const t = tempDir('liteboot-cfg-');
  before(async () => makeCaDir(t.dir));
  after(() => t.cleanup());
  const write = (toml: string) => writeFileSync(join(t.dir, '.liteboot.toml'), toml);

  test('the resolved configuration with every secret redacted; exit 0', () => {
    write(
      [
        '[server]',
        'hostname = "localhost"',
        'port = 2443',
        'db = "postgres://liteboot:pg-pass-word@127.0.0.1:5432/liteboot"',
        '[cloud]',
        'provider = "webhook"',
        'url = "https://hook:hunter2@hooks.example.net/devices"',
        'secret = "s3cr3t-webhook"',
        'connection_string = "HostName=h.azure-devices.net;SharedAccessKeyName=owner;SharedAccessKey=c2VjcmV0a2V5"',
        '',
      ].join('\n'),
    );
    const r = liteboot(['config', 'check', '--json'], { cwd: t.dir, env: { HOME: t.dir } });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { ok: boolean; configFile: string; config: { port: number; cloud: Record<string, string> }; problems: string[] };
    assert.equal(j.ok, true);
    assert.deepEqual(j.problems, []);
    assert.equal(j.configFile, join(t.dir, '.liteboot.toml'));
    assert.equal(j.config.port, 2443);
    assert.equal((j.config as unknown as { db: string }).db, 'postgres://liteboot:(redacted)@127.0.0.1:5432/liteboot');
    assert.equal(j.config.cloud.url, 'https://hook:(redacted)@hooks.example.net/devices');
    assert.equal(j.config.cloud.secret, '(redacted)');
    assert.equal(j.config.cloud.connectionString, 'HostName=h.azure-devices.net;SharedAccessKeyName=owner;SharedAccessKey=(redacted)');
    const text = liteboot(['config', 'check'], { cwd: t.dir, env: { HOME: t.dir, LITEBOOT_WEBHOOK_SECRET: 'from-env' } });
    assert.equal(text.code, 0);
    for (const secret of ['hunter2', 's3cr3t', 'c2VjcmV0a2V5', 'from-env', 'pg-pass-word']) assert.ok(!(text.stdout + text.stderr + r.stdout).includes(secret), secret);
    assert.match(text.stdout, /^ {2}port = 2443$/m);
    assert.match(text.stdout, /\nok\n$/);
  });

  test('what is wrong, with the line: a TOML mistake, an unknown key, a certificate for another name; exit 1', () => {
    const file = join(t.dir, '.liteboot.toml');
    write('[server]\nport = 1443\nhost name = "x"\n');
    let r = liteboot(['config', 'check'], { cwd: t.dir, env: { HOME: t.dir } });
    assert.equal(r.stderr, `liteboot: ${file}:3:6: not valid TOML: illegal character in key\n`);
    assert.equal(r.code, 1);
    write('[server]\nport = 1443\n\nhubnam = "x"\n');
    r = liteboot(['config', 'check'], { cwd: t.dir, env: { HOME: t.dir } });
    assert.match(r.stderr, new RegExp(`^liteboot: ${file}:4: unknown key "hubnam" in \\[server\\] \\(known: [^\\n]+\\)\\n$`));
    assert.equal(r.code, 1);
    write('[server]\nhostname = "ca.example.net"\n');
    r = liteboot(['config', 'check', '--json'], { cwd: t.dir, env: { HOME: t.dir } });
    assert.equal(r.code, 1);
    assert.deepEqual((JSON.parse(r.stdout) as { problems: string[] }).problems, [
      `${join(t.dir, 'certs', 'SERVER.crt')} is not valid for the host name ca.example.net (it names DNS:localhost, IP Address:127.0.0.1); devices will refuse it`,
    ]);
  });
});

describe('completion (finding 7)', () => {
  const t = tempDir('liteboot-compl-');
  after(() => t.cleanup());
  /** Completes the words typed so far (the last one partial) with the generated bash function. */
  const complete = (words: string[]): string => {
    const script = join(t.dir, 'liteboot.bash');
    const r = liteboot(['completion', 'bash'], { cwd: t.dir });
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(script, r.stdout);
    const out = spawnSync('bash', ['-c', `source ${script}; complete -p liteboot; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _liteboot; printf '%s\\n' "\${COMPREPLY[@]}"`], { cwd: t.dir, encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    const [registration, ...rest] = out.stdout.split('\n');
    assert.equal(registration, 'complete -F _liteboot liteboot');
    return rest.filter((l) => l !== '').join(' ');
  };

  test('bash: commands, subcommands, options and option values, from the registered commands', () => {
    assert.equal(complete(['liteboot', 'ce']), 'cert');
    assert.equal(complete(['liteboot', 'cert', 'st']), 'status');
    assert.equal(complete(['liteboot', 'cert', '']), 'get revoke status');
    assert.equal(complete(['liteboot', 'cert', 'status', '--w']), '--wire');
    assert.equal(complete(['liteboot', 'cert', 'status', '--wire', '']), 'cbor json');
    assert.equal(complete(['liteboot', 'cert', 'revoke', '1', '--reason', 'key']), 'keyCompromise');
    assert.equal(complete(['liteboot', 'new-device', '--co']), '--concurrency --config --count');
    assert.equal(complete(['liteboot', 'config', '']), 'check');
    assert.equal(complete(['liteboot', 'decode-cbor', '-r', 'c']), 'cc cs csr ccs');
    assert.equal(complete(['liteboot', 'server', 'start', '--log-format', '']), 'text json');
  });

  test('zsh: the same script behind bashcompinit; an unknown shell is a usage mistake', () => {
    const z = liteboot(['completion', 'zsh'], { cwd: t.dir });
    assert.equal(z.code, 0);
    assert.match(z.stdout, /^#compdef liteboot\nautoload -U \+X bashcompinit && bashcompinit\n/);
    const f = liteboot(['completion', 'fish'], { cwd: t.dir });
    assert.equal(f.stderr, 'liteboot: completion takes bash or zsh, not "fish"\n');
    assert.equal(f.code, 2);
  });
});
