/**
 * Fuzzer (issue 7): malformed input at every layer, with a fixed, printed seed.
 *
 * In process: every byte of one CSR flipped in turn and every truncation (none may be accepted),
 * random and mutated CBOR and JSON bodies, huge length fields, deep nesting, broken multipart.
 * Against a real server over TLS: the same bodies and worse paths and headers (every request must
 * get an HTTP answer below 500; only a request over the header or body limit may see its
 * connection reset instead of the 431/413), garbage before and during the TLS handshake (the
 * server must close each such connection). Well-formed enrolments and status queries, every 80
 * cases and after the garbage, must succeed: a server that hangs or stops answering fails. The
 * process must live and its memory stay bounded.
 *
 *   node dist/scripts/fuzz.js [--cases 5000] [--seed N]
 *
 * Every input is drawn from the seed (the base CSR is a fixed one below), so --seed N replays
 * the same cases. Prints one JSON line at the end and exits non-zero on a failure.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toPem } from '../src/asn1/pem.js';
import { acceptCsr } from '../src/ca/policy.js';
import { LitebootError } from '../src/errors.js';
import { parseJsonExact } from '../src/protocol/json.js';
import { decodeCsrRequest, decodeRevokeRequest } from '../src/protocol/messages.js';
import { extractUpload } from '../src/protocol/multipart.js';
import { decodeCborResponse, WireError } from '../src/protocol/responses.js';
import { arg, client, csrPool, finish, makeCa, prng, rssOf, startServer } from './lib/harness.js';

const CASES = arg('--cases', 5000);
const SEED = arg('--seed', 1);
const rnd = prng(SEED);
const int = (n: number) => Math.floor(rnd() * n);
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
console.log(`fuzz: ${CASES} cases per layer, seed ${SEED} (replay with --seed ${SEED})`);

const problems: string[] = [];
const problem = (m: string) => {
  if (problems.length < 20) console.log(`PROBLEM: ${m}`);
  problems.push(m);
};

function mutate(b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (int(6)) {
    case 0: // flip a few bits
      for (let i = 0, n = 1 + int(4); i < n && out.length; i++) out[int(out.length)]! ^= 1 << int(8);
      return out;
    case 1: // truncate
      return out.subarray(0, int(out.length));
    case 2: // append garbage
      return Buffer.concat([out, bytes(1 + int(16))]);
    case 3: // a huge length field where one was
      if (out.length > 4) out.writeUInt16BE(0xffff, 2);
      return out;
    case 4: // splice random bytes in the middle
      return Buffer.concat([out.subarray(0, int(out.length)), bytes(int(32)), out.subarray(int(out.length))]);
    default:
      return bytes(int(64));
  }
}

// A fixed CSR (O=Test Vendor, OU=Signing, CN=56d38f73-…; `openssl req -verify` passes): an
// ECDSA signature is randomized, so a CSR built at each run would not replay byte for byte.
const csrDer = Buffer.from(
  [
    '308201133081b9020100305731143012060355040a130b546573742056656e646f723110300e060355040b1307536967',
    '6e696e67312d302b0603550403132435366433386637332d336636662d346135392d383662632d643331356131636363',
    '3633343059301306072a8648ce3d020106082a8648ce3d03010703420004df23d750a5c6db823ad982f6ff38d16be015',
    '58ff23d1b21ecd13e67e07bfba5eb8097e8ee24ade6fb03df52ee86661cba4b424a6b1fba64f069e76d831561137a000',
    '300a06082a8648ce3d04030203490030460221008cd1d7ea3a9f7640715ba08c6e1d87f15e104fdde5bc9f2a1cd457b1',
    'dadfed5c022100f4331f59538eae229630269003b12cfb1d1308a806571b9a68b21e3e05c0a6aa',
  ].join(''),
  'hex',
);
const cborBody = Buffer.concat([Buffer.from([0x81, 0x59, csrDer.length >> 8, csrDer.length & 0xff]), csrDer]);
const jsonBody = Buffer.from(`{"CSR":"${csrDer.toString('base64')}"}`);
const krrCbor = Buffer.from('a1011b18ebafce2d47c57e0201', 'hex');
const krrJson = Buffer.from('{"Serial":1795722176495076734,"Reason":1}');
const boundary = 'fuzzboundary';
const multipart = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="csrfile"; filename="a.csr"\r\n\r\n${toPem('CERTIFICATE REQUEST', csrDer)}\r\n--${boundary}--\r\n`);
const deep = (open: number, close: number, n: number) => Buffer.concat([Buffer.alloc(n, open), Buffer.from([0x00]), Buffer.alloc(close ? n : 0, close)]);

// ---------------------------------------------------------------- in process
const t0 = performance.now();
let inProcess = 0;
const expectLiteboot = async (what: string, f: () => unknown) => {
  inProcess++;
  try {
    await f();
  } catch (e) {
    if (!(e instanceof LitebootError) && !(e instanceof WireError)) problem(`${what}: ${(e as Error).stack ?? e}`);
  }
};

// Every byte of one CSR flipped in turn, and every truncation: none may be accepted.
for (let i = 0; i < csrDer.length; i++) {
  for (const variant of [Buffer.from(csrDer), csrDer.subarray(0, i)]) {
    if (variant.length === csrDer.length) variant[i]! ^= 0xff;
    await expectLiteboot(`CSR byte ${i}`, async () => {
      await acceptCsr(variant, { requireUuid: true });
      problem(`a CSR with byte ${i} ${variant.length === csrDer.length ? 'flipped' : 'truncated'} was accepted`);
    });
  }
}
for (let c = 0; c < CASES; c++) {
  const cbor = mutate(pick([cborBody, krrCbor, deep(0x81, 0, 5000), deep(0xa1, 0, 3000)]));
  const json = mutate(pick([jsonBody, krrJson, deep(0x5b, 0x5d, 100_000)]));
  await expectLiteboot('decodeCsrRequest cbor', () => decodeCsrRequest('cbor', cbor));
  await expectLiteboot('decodeCsrRequest json', () => decodeCsrRequest('json', json));
  await expectLiteboot('decodeRevokeRequest cbor', () => decodeRevokeRequest('cbor', cbor));
  await expectLiteboot('decodeRevokeRequest json', () => decodeRevokeRequest('json', json));
  await expectLiteboot('parseJsonExact', () => parseJsonExact(json.toString('latin1')));
  await expectLiteboot('decodeCborResponse', () => decodeCborResponse(cbor, 'auto'));
  await expectLiteboot('extractUpload', () => extractUpload(`multipart/form-data; boundary=${boundary}`, mutate(multipart), 'csrfile', 4096));
  await expectLiteboot('acceptCsr', () => acceptCsr(mutate(csrDer), { requireUuid: true }));
}
console.log(`in process: ${inProcess} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${problems.length} problems`);

// ---------------------------------------------------------------- against a server
// Over these the server answers 431/413 and closes without reading the rest, so the client may
// see the reset before the answer (server defaults: 8 KiB of headers, a 16 KiB body).
const HEADER_LIMIT = 8 * 1024 - 200;
const BODY_LIMIT = 16 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'liteboot-fuzz-'));
const statuses = new Map<string, number>();
let http = 0;
let raw = 0;
let probes = 0;
let alive = false;
let rssStart = 0;
let rssEnd = 0;
try {
  await makeCa(dir);
  const srv = await startServer(dir);
  const f = (n: string) => readFileSync(join(dir, 'certs', n));
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ca: f('CA.crt'), cert: f('BOOTSTRAP.crt'), key: f('BOOTSTRAP.key'), servername: 'localhost' });
  rssStart = rssOf(srv.child.pid!);
  /** The HTTP status, or the connection error's code (ETIMEDOUT after 15 s without an answer). */
  const send = (method: string, path: string, headers: Record<string, string>, body?: Buffer) =>
    new Promise<number | string>((resolve) => {
      const req = request({ host: '127.0.0.1', port: srv.port, method, path, agent, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) }, timeout: 15_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.end(body);
    });
  // Well-formed requests on a fresh connection: an enrolment, then the status of what it got.
  const probeCsrs = await csrPool(Math.ceil(CASES / 80) + 8, rnd);
  const probe = async (when: string) => {
    const c = client(dir, srv.port, 'BOOTSTRAP', 1);
    try {
      const der = await c.enrol(probeCsrs[probes++ % probeCsrs.length]!, 'cbor');
      const serial = BigInt('0x' + new X509Certificate(der).serialNumber);
      const st = await c.certStatus(serial);
      if (st.kind !== 'cs' || st.status !== 1) problem(`${when}: the certificate just issued (serial ${serial}) is not answered Status 1`);
    } catch (e) {
      problem(`${when}: a well-formed enrolment failed, the server stopped answering (${(e as Error).message})`);
    } finally {
      c.close();
    }
  };
  const paths = ['/api/v1/cr', '/api/v1/kur', '/api/v1/krr', '/api/v1/p10cr'];
  const junkSegment = () => pick(['%00', '%E0%A4%A', '%zz', '%', '..', '%2e%2e', 'x'.repeat(int(3000)), '-1', '99999999999999999999999999', encodeURIComponent(bytes(8).toString('latin1')), '{}', '']);
  const gen = (): [string, string, Record<string, string>, Buffer?] => {
    switch (int(7)) {
      case 0:
        return ['POST', pick(paths), { 'Content-Type': 'application/cbor' }, mutate(pick([cborBody, krrCbor, deep(0x81, 0, 5000)]))];
      case 1:
        return ['POST', pick(paths), { 'Content-Type': 'application/json' }, mutate(pick([jsonBody, krrJson, deep(0x5b, 0x5d, 5000)]))];
      case 2:
        return ['POST', '/api/v1/p10cr', { 'Content-Type': pick([`multipart/form-data; boundary=${boundary}`, 'multipart/form-data', 'multipart/form-data; boundary=']) }, mutate(multipart)];
      case 3:
        return ['GET', `/api/v1/${pick(['cs', 'cc', 'ds'])}/${junkSegment()}`, pick<Record<string, string>>([{}, { 'Content-Type': 'application/cbor' }, { 'Content-Type': 'text/x-junk' }])];
      case 4:
        return [pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']), pick(['/', '/api', '/api/v1/', `/api/v1/${junkSegment()}`, '/api/v1/ccs?x=' + junkSegment()]), {}];
      case 5:
        return ['GET', '/api/v1/ccs', { [`X-${int(1000)}`]: 'h'.repeat(int(20_000)) }];
      default:
        return ['POST', '/api/v1/cr', { 'Content-Type': 'application/cbor' }, bytes(int(3) === 0 ? 200_000 : int(2000))];
    }
  };
  const overLimit = ([, path, headers, body]: ReturnType<typeof gen>) =>
    (body?.length ?? 0) > BODY_LIMIT || path.length + Object.entries(headers).reduce((n, [k, v]) => n + k.length + v.length, 0) > HEADER_LIMIT;
  await probe('before the first case');
  for (let c = 0; c < CASES; c += 8) {
    const batch = Array.from({ length: Math.min(8, CASES - c) }, gen);
    const results = await Promise.all(batch.map(([m, p, h, b]) => send(m, p, h, b)));
    results.forEach((st, i) => {
      http++;
      const what = `${batch[i]![0]} ${batch[i]![1].slice(0, 80)}`;
      statuses.set(String(st), (statuses.get(String(st)) ?? 0) + 1);
      if (typeof st === 'number' && st >= 500) problem(`case ${c + i}: ${what} answered ${st}`);
      else if (typeof st === 'string' && !((st === 'ECONNRESET' || st === 'EPIPE') && overLimit(batch[i]!))) problem(`case ${c + i}: ${what} got no HTTP answer (${st})`);
    });
    if (srv.child.exitCode !== null) {
      problem(`the server died during cases ${c}-${c + batch.length - 1}`);
      break;
    }
    if ((c / 8) % 10 === 9) await probe(`after case ${c + batch.length - 1}`);
  }
  // Garbage before and during the TLS handshake, on both listeners: the server must close each.
  for (let c = 0; c < Math.max(50, CASES / 20) && srv.child.exitCode === null; c++) {
    const port = c % 2 ? srv.mport : srv.port;
    const hello = Buffer.from('16030100', 'hex'); // a handshake record header, then nonsense
    const payload = int(2) ? bytes(1 + int(4000)) : Buffer.concat([hello, Buffer.from([int(256), int(256)]), bytes(int(300))]);
    const closed = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => s.end(payload));
      s.on('data', () => {});
      s.on('error', () => {});
      s.on('close', () => resolve(true));
      // The server's handshake_timeout is 10 s by default.
      s.setTimeout(20_000, () => {
        resolve(false);
        s.destroy();
      });
    });
    if (!closed) problem(`garbage connection ${c} (${payload.length} bytes to port ${port}) was still open after 20 s`);
    raw++;
  }
  agent.destroy();
  alive = srv.child.exitCode === null;
  if (alive) for (let i = 0; i < 8; i++) await probe(`after the garbage connections (${i + 1}/8)`);
  alive = srv.child.exitCode === null;
  rssEnd = alive ? rssOf(srv.child.pid!) : 0;
  if (!alive) problem('the server died');
  if (rssEnd - rssStart > 150 * 1024 * 1024) problem(`resident memory grew by ${((rssEnd - rssStart) / 1e6).toFixed(0)} MB`);
  console.log(`server: ${http} HTTP cases, answers ${[...statuses].sort().map(([k, v]) => `${k}:${v}`).join(' ')}; ${raw} garbage connections; ${probes} well-formed probes; alive ${alive}; RSS ${(rssStart / 1e6).toFixed(0)} -> ${(rssEnd / 1e6).toFixed(0)} MB`);
  if (alive) {
    srv.child.kill('SIGTERM');
    const code = await srv.exited;
    if (code !== 0) problem(`the server exited ${code} on SIGTERM`);
  }
} catch (e) {
  console.log(`fuzz failed: ${(e as Error).stack}`);
  problem(`crashed: ${(e as Error).message.split('\n')[0]}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const reasons = problems.length ? [`${problems.length} problem${problems.length > 1 ? 's' : ''} (seed ${SEED}), first: ${problems[0]}`] : [];
finish('fuzz', reasons, {
  seed: SEED,
  cases: CASES,
  inProcess,
  http,
  answers: Object.fromEntries([...statuses].sort()),
  garbageConnections: raw,
  probes,
  serverAlive: alive,
  rssMB: [Math.round(rssStart / 1e6), Math.round(rssEnd / 1e6)],
  problems: problems.slice(0, 20),
});
