import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { spawnServer } from '../helpers/server.js';
import { BIN, FIXTURE, liteboot, openssl, tempDir, type Result } from '../helpers/run.js';

const PW = 'correct-horse-8f3a1c';
const WRONG = 'wrong-battery-77d2e0';
// No password source unless a test gives one; spawnSync's stdin is a pipe, never a terminal.
const NONE = { LITEBOOT_CA_PASSWORD: undefined };

const tmp = tempDir('liteboot-cakey-');
after(tmp.cleanup);

function newDir(name: string): string {
  const d = join(tmp.dir, name);
  mkdirSync(d, { mode: 0o700 });
  writeFileSync(join(d, 'pw'), `${PW}\n`, { mode: 0o600 });
  writeFileSync(join(d, 'wrong'), `${WRONG}\n`, { mode: 0o600 });
  return d;
}

/** Neither password, in any output. */
function clean(r: Result): void {
  for (const p of [PW, WRONG]) {
    assert.ok(!r.stdout.includes(p) && !r.stderr.includes(p), `a password leaked:\n${r.stdout}\n${r.stderr}`);
  }
}

/** One line on stderr, no OpenSSL text, no stack, and the exit status. */
function oneLine(r: Result, code: number, re: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stderr.split('\n').length, 2, `not one line:\n${r.stderr}`);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /error:[0-9A-F]{8}|bad decrypt|at .*\.js:\d+/);
  clean(r);
}

/** The public key of a private key file (DER SubjectPublicKeyInfo), as openssl reads it. */
function opensslPub(keyFile: string, pass?: string): Result & { out: Buffer } {
  return openssl(['pkey', '-in', keyFile, '-pubout', '-outform', 'DER', '-passin', `pass:${pass ?? ''}`]);
}

function certPub(certFile: string): Buffer {
  const pem = openssl(['x509', '-in', certFile, '-pubkey', '-noout']).stdout;
  return openssl(['pkey', '-pubin', '-outform', 'DER'], { input: pem }).out;
}

const SERVE = ['server', 'start', '--hostname', 'localhost', '--listen', '127.0.0.1', '-p', '0', '-m', '0', '--http-port', '0'];

describe('setup-ca --encrypt and the commands that sign with the key', () => {
  const cwd = newDir('setup');
  const key = join(cwd, 'certs', 'CA.key');
  const lb = (args: string[], env: NodeJS.ProcessEnv = NONE) => liteboot(args, { cwd, env });

  test('setup-ca --encrypt --password-file writes PBES2/PBKDF2/AES-256-CBC PKCS#8, mode 0600', () => {
    const r = lb(['setup-ca', 'localhost', '--san', '127.0.0.1', '--encrypt', '--password-file', 'pw']);
    assert.equal(r.code, 0, r.stderr);
    clean(r);
    const pem = readFileSync(key, 'utf8');
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const asn1 = openssl(['asn1parse', '-in', key]).stdout;
    for (const alg of [':PBES2', ':PBKDF2', ':hmacWithSHA256', ':aes-256-cbc']) assert.ok(asn1.includes(alg), `${alg} in\n${asn1}`);
  });

  test('openssl reads it with the password, not without, and its public key is the certificate\'s', () => {
    const good = opensslPub(key, PW);
    assert.equal(good.code, 0, good.stderr);
    assert.deepEqual(good.out, certPub(join(cwd, 'certs', 'CA.crt')));
    assert.notEqual(opensslPub(key).code, 0);
    assert.notEqual(opensslPub(key, WRONG).code, 0);
  });

  test('without a password, each signing command says so in one line (exit 1) and writes nothing', () => {
    const msg = new RegExp(`^liteboot: the CA key ${key.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is encrypted: give its password with --password-file FILE or \\$LITEBOOT_CA_PASSWORD\n$`);
    for (const args of [['setup-bootstrap'], ['operator', 'create', 'bob'], ['setup-ocsp'], ['crl', '-o', 'x.crl'], ['cakey', 'getpub'], ['cakey', 'decrypt']]) {
      oneLine(lb(args), 1, msg);
    }
    assert.deepEqual(readdirSync(join(cwd, 'certs')).sort(), ['CA.crt', 'CA.key', 'SERVER.crt', 'SERVER.key', 'ca_crt.txt']);
    assert.ok(!existsSync(join(cwd, 'CADB.db')) && !existsSync(join(cwd, 'x.crl')));
  });

  test('a wrong password is one line, by file or by $LITEBOOT_CA_PASSWORD, with --verbose too, and never shown', () => {
    const msg = /^liteboot: wrong password for the CA key \S+\/certs\/CA\.key\n$/;
    oneLine(lb(['setup-bootstrap', '--password-file', 'wrong']), 1, msg);
    oneLine(lb(['setup-bootstrap'], { LITEBOOT_CA_PASSWORD: WRONG }), 1, msg);
    const v = lb(['cakey', 'getpub', '--verbose'], { LITEBOOT_CA_PASSWORD: WRONG });
    assert.equal(v.code, 1);
    assert.match(v.stderr, /^liteboot: wrong password for the CA key /);
    clean(v);
  });

  test('with the password: setup-bootstrap (file), operator create and getpub ($LITEBOOT_CA_PASSWORD)', () => {
    const b = lb(['setup-bootstrap', '--password-file', 'pw']);
    assert.equal(b.code, 0, b.stderr);
    clean(b);
    const o = lb(['operator', 'create', 'alice'], { LITEBOOT_CA_PASSWORD: PW });
    assert.equal(o.code, 0, o.stderr);
    clean(o);
    for (const f of ['BOOTSTRAP.crt', 'OPERATOR-alice.crt']) {
      const v = openssl(['verify', '-CAfile', join(cwd, 'certs', 'CA.crt'), join(cwd, 'certs', f)]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
    }
    const g = lb(['cakey', 'getpub'], { LITEBOOT_CA_PASSWORD: PW });
    assert.equal(g.code, 0, g.stderr);
    assert.equal(g.stdout, openssl(['x509', '-in', join(cwd, 'certs', 'CA.crt'), '-pubkey', '-noout']).stdout);
  });

  test('server start without the password: one line, exit 1, no database', () => {
    oneLine(lb(SERVE), 1, /^liteboot: the CA key \S+ is encrypted: give its password with --password-file FILE or \$LITEBOOT_CA_PASSWORD\n$/);
    oneLine(lb([...SERVE, '--password-file', 'wrong']), 1, /^liteboot: wrong password for the CA key /);
    oneLine(lb(SERVE, { LITEBOOT_CA_PASSWORD: WRONG }), 1, /^liteboot: wrong password for the CA key /);
    assert.ok(!existsSync(join(cwd, 'CADB.db')));
  });

  test('server start still refuses a CA.key others can read, encrypted or not', () => {
    chmodSync(key, 0o640);
    try {
      oneLine(lb(SERVE, { LITEBOOT_CA_PASSWORD: PW }), 1, /CA\.key is open to group \(mode 0640\); run `chmod 600 /);
    } finally {
      chmodSync(key, 0o600);
    }
  });

  for (const how of ['--password-file', '$LITEBOOT_CA_PASSWORD'] as const) {
    test(`server start with the password by ${how} serves: a device enrols and openssl verifies its certificate`, async () => {
      const byFile = how === '--password-file';
      const s = await spawnServer(cwd, () => {}, byFile ? ['--password-file', 'pw'] : [], byFile ? NONE : { LITEBOOT_CA_PASSWORD: PW });
      try {
        // Not on the command line, nor in the process title.
        const cmdline = readFileSync(`/proc/${s.child.pid}/cmdline`, 'utf8');
        assert.ok(!cmdline.includes(PW), cmdline);
        const nd = liteboot(['new-device', 'localhost', '--port', String(s.port)], { cwd, env: NONE });
        assert.equal(nd.code, 0, nd.stderr);
        const uuid = /enrolled ([0-9a-f-]{36})/.exec(nd.stdout)![1]!;
        const v = openssl(['verify', '-CAfile', join(cwd, 'certs', 'CA.crt'), join(cwd, 'certs', `${uuid}.crt`)]);
        assert.equal(v.code, 0, v.stdout + v.stderr);
      } finally {
        assert.equal(await s.stop(), 0);
      }
      assert.ok(!s.stdout().includes(PW) && !s.stderr().includes(PW), s.stderr());
    });
  }
});

test('up on an encrypted CA without its password: one line, exit 1, no bootstrap credential, no database', () => {
  const cwd = newDir('up');
  assert.equal(liteboot(['setup-ca', 'localhost', '--encrypt', '--password-file', 'pw'], { cwd, env: NONE }).code, 0);
  oneLine(liteboot(['up', '--listen', '127.0.0.1', '-p', '0', '-m', '0', '--http-port', '0'], { cwd, env: NONE }), 1, /^liteboot: the CA key \S+ is encrypted: give its password with /);
  assert.ok(!existsSync(join(cwd, 'certs', 'BOOTSTRAP.crt')) && !existsSync(join(cwd, 'CADB.db')));
});

describe('cakey encrypt and decrypt convert a key in place', () => {
  function roundTrip(cwd: string): void {
    const key = join(cwd, 'certs', 'CA.key');
    const pub = certPub(join(cwd, 'certs', 'CA.crt'));
    const plain = opensslPub(key);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(plain.out, pub);

    const e = liteboot(['cakey', 'encrypt', '--password-file', 'pw'], { cwd, env: NONE });
    assert.equal(e.code, 0, e.stderr);
    clean(e);
    assert.match(readFileSync(key, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n[^-]+-----END ENCRYPTED PRIVATE KEY-----\n$/);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.notEqual(opensslPub(key).code, 0, 'openssl read it without the password');
    const enc = opensslPub(key, PW);
    assert.equal(enc.code, 0, enc.stderr);
    assert.deepEqual(enc.out, pub);
    oneLine(liteboot(['cakey', 'encrypt', '--password-file', 'pw'], { cwd, env: NONE }), 2, /^liteboot: the CA key \S+ is already encrypted\n$/);
    oneLine(liteboot(['cakey', 'decrypt', '--password-file', 'wrong'], { cwd, env: NONE }), 1, /^liteboot: wrong password for the CA key /);

    const d = liteboot(['cakey', 'decrypt'], { cwd, env: { LITEBOOT_CA_PASSWORD: PW } });
    assert.equal(d.code, 0, d.stderr);
    clean(d);
    assert.match(readFileSync(key, 'utf8'), /^-----BEGIN EC PRIVATE KEY-----\n/);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    const back = opensslPub(key);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(back.out, pub);
    oneLine(liteboot(['cakey', 'decrypt', '--password-file', 'pw'], { cwd, env: NONE }), 2, /^liteboot: the CA key \S+ is not encrypted\n$/);
    // Nothing left aside.
    assert.deepEqual(readdirSync(join(cwd, 'certs')).filter((n) => n.includes('tmp')), []);
  }

  test('a key made by setup-ca', () => {
    const cwd = newDir('own');
    assert.equal(liteboot(['setup-ca', 'localhost'], { cwd, env: NONE }).code, 0);
    roundTrip(cwd);
  });

  test('the Go-made CA.key of the fixture', () => {
    const cwd = newDir('go');
    mkdirSync(join(cwd, 'certs'), { mode: 0o700 });
    for (const f of ['CA.crt', 'CA.key']) copyFileSync(join(FIXTURE, 'certs', f), join(cwd, 'certs', f));
    chmodSync(join(cwd, 'certs', 'CA.key'), 0o600);
    roundTrip(cwd);
  });

  test('a key with the EC PARAMETERS block of `openssl ecparam -genkey`', () => {
    const cwd = newDir('ecparam');
    mkdirSync(join(cwd, 'certs'), { mode: 0o700 });
    const key = join(cwd, 'certs', 'CA.key');
    const g = openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-out', key]);
    assert.equal(g.code, 0, g.stderr);
    assert.match(readFileSync(key, 'utf8'), /^-----BEGIN EC PARAMETERS-----/);
    const c = openssl(['req', '-x509', '-new', '-key', key, '-subj', '/O=Test/CN=ecparam CA', '-days', '30', '-out', join(cwd, 'certs', 'CA.crt')]);
    assert.equal(c.code, 0, c.stderr);
    chmodSync(key, 0o600);
    roundTrip(cwd);
  });

  test('a key that is not the certificate\'s is refused before any password is asked for', () => {
    const cwd = newDir('mismatch');
    mkdirSync(join(cwd, 'certs'), { mode: 0o700 });
    copyFileSync(join(FIXTURE, 'certs', 'CA.crt'), join(cwd, 'certs', 'CA.crt'));
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(cwd, 'certs', 'CA.key')]);
    const before = readFileSync(join(cwd, 'certs', 'CA.key'));
    oneLine(liteboot(['cakey', 'encrypt'], { cwd, env: NONE }), 1, /is not the key of /);
    assert.deepEqual(readFileSync(join(cwd, 'certs', 'CA.key')), before);
  });
});

/**
 * Drives the CLI on a pseudo-terminal (python3's pty module): `answers` are typed in turn, each
 * after the prompt before it appears. Returns the exit status and everything the terminal showed.
 */
function onTerminal(cwd: string, args: string[], answers: string[]): { code: number; screen: string } {
  const py = `
import os, pty, sys, json
args, answers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.environ.pop('LITEBOOT_CA_PASSWORD', None)
    os.execv(args[0], args)
screen = b''
def read_until(marker):
    global screen
    while marker not in screen:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            return False
        if not chunk:
            return False
        screen += chunk
    return True
for prompt, answer in answers:
    if not read_until(prompt.encode()):
        break
    screen = screen.replace(prompt.encode(), b'<' + prompt.encode() + b'>', 1)
    os.write(fd, answer.encode() + b'\\r')
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    screen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'code': os.waitstatus_to_exitcode(status), 'screen': screen.decode('utf8', 'replace')}))
`;
  const pairs = answers.map((a, i) => [i === 0 ? 'Password for' : 'Again, to confirm:', a]);
  const r = spawnSync('python3', ['-c', py, JSON.stringify([process.execPath, BIN, ...args]), JSON.stringify(pairs)], { cwd, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { code: number; screen: string };
}

describe('the password prompt on a terminal', () => {
  const cwd = newDir('tty');
  const key = join(cwd, 'certs', 'CA.key');

  test('setup-ca --encrypt asks twice without echo; two different answers change nothing', () => {
    const differ = onTerminal(cwd, ['setup-ca', 'localhost', '--encrypt'], [PW, WRONG]);
    assert.equal(differ.code, 1, differ.screen);
    assert.match(differ.screen, /the two passwords differ; nothing was changed/);
    assert.ok(!existsSync(key));
    const r = onTerminal(cwd, ['setup-ca', 'localhost', '--encrypt'], [PW, PW]);
    assert.equal(r.code, 0, r.screen);
    assert.match(r.screen, /^<Password for> the CA key \S+CA\.key: \r?\n<Again, to confirm:> \r?\n/);
    assert.ok(!r.screen.includes(PW), `echoed:\n${r.screen}`);
    const o = opensslPub(key, PW);
    assert.equal(o.code, 0, o.stderr);
  });

  test('a signing command asks once; a wrong answer is one line', () => {
    const ok = onTerminal(cwd, ['cakey', 'getpub'], [PW]);
    assert.equal(ok.code, 0, ok.screen);
    assert.match(ok.screen, /-----BEGIN PUBLIC KEY-----/);
    assert.ok(!ok.screen.includes(PW), ok.screen);
    assert.doesNotMatch(ok.screen, /Again/);
    const bad = onTerminal(cwd, ['cakey', 'getpub'], [WRONG]);
    assert.equal(bad.code, 1, bad.screen);
    assert.match(bad.screen, /\nliteboot: wrong password for the CA key \S+\r?\n$/);
    assert.ok(!bad.screen.includes(WRONG), bad.screen);
  });
});
