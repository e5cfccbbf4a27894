/**
 * Fuzzer (issue 7): malformed input at every layer, with a fixed, printed seed.
 *
 * In process: every byte of one CSR flipped in turn and every truncation (none may be accepted),
 * random and mutated CBOR and JSON bodies, huge length fields, deep nesting, broken multipart.
 * Against a real server over TLS: the same bodies and worse paths and headers (every request must
 * get an HTTP answer below 500), garbage before and during the TLS handshake; the process must
 * live and its memory stay bounded.
 *
 *   node dist/scripts/fuzz.js [--cases 5000] [--seed N]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCsr } from '../src/asn1/csr.js';
import { generateKey } from '../src/asn1/keys.js';
import { dn } from '../src/asn1/name.js';
import { toPem } from '../src/asn1/pem.js';
import { acceptCsr } from '../src/ca/policy.js';
import { LitebootError } from '../src/errors.js';
import { parseJsonExact } from '../src/protocol/json.js';
import { decodeCsrRequest, decodeRevokeRequest } from '../src/protocol/messages.js';
import { extractUpload } from '../src/protocol/multipart.js';
import { decodeCborResponse, WireError } from '../src/protocol/responses.js';
import { arg, makeCa, prng, rssOf, startServer } from './lib/harness.js';

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

const csrDer = await buildCsr(dn({ O: 'Test Vendor', OU: 'Signing', CN: '56d38f73-3f6f-4a59-86bc-d315a1ccc634' }), generateKey());
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
const dir = mkdtempSync(join(tmpdir(), 'liteboot-fuzz-'));
try {
  await makeCa(dir);
  const srv = await startServer(dir);
  const f = (n: string) => readFileSync(join(dir, 'certs', n));
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ca: f('CA.crt'), cert: f('BOOTSTRAP.crt'), key: f('BOOTSTRAP.key'), servername: 'localhost' });
  const rssStart = rssOf(srv.child.pid!);
  const statuses = new Map<number, number>();
  const send = (method: string, path: string, headers: Record<string, string>, body?: Buffer) =>
    new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port: srv.port, method, path, agent, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) }, timeout: 20_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', () => resolve(-1));
      req.on('timeout', () => req.destroy());
      req.end(body);
    });
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
  let http = 0;
  for (let c = 0; c < CASES; c += 8) {
    const batch = Array.from({ length: Math.min(8, CASES - c) }, gen);
    const results = await Promise.all(batch.map(([m, p, h, b]) => send(m, p, h, b)));
    results.forEach((st, i) => {
      http++;
      statuses.set(st, (statuses.get(st) ?? 0) + 1);
      if (st >= 500) problem(`${batch[i]![0]} ${batch[i]![1].slice(0, 80)} answered ${st}`);
    });
    if (srv.child.exitCode !== null) {
      problem('the server died');
      break;
    }
  }
  // Garbage before and during the TLS handshake, on both listeners.
  let raw = 0;
  for (let c = 0; c < Math.max(50, CASES / 20); c++) {
    const port = c % 2 ? srv.mport : srv.port;
    const hello = Buffer.from('16030100', 'hex'); // a handshake record header, then nonsense
    const payload = int(2) ? bytes(1 + int(4000)) : Buffer.concat([hello, Buffer.from([int(256), int(256)]), bytes(int(300))]);
    await new Promise<void>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => s.end(payload));
      s.on('data', () => {});
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.setTimeout(15_000, () => s.destroy());
    });
    raw++;
  }
  agent.destroy();
  const alive = srv.child.exitCode === null;
  const rssEnd = alive ? rssOf(srv.child.pid!) : 0;
  if (!alive) problem('the server died');
  if (rssEnd - rssStart > 150 * 1024 * 1024) problem(`resident memory grew by ${((rssEnd - rssStart) / 1e6).toFixed(0)} MB`);
  console.log(`server: ${http} HTTP cases, statuses ${[...statuses].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}:${v}`).join(' ')}; ${raw} garbage connections; alive ${alive}; RSS ${(rssStart / 1e6).toFixed(0)} -> ${(rssEnd / 1e6).toFixed(0)} MB`);
  srv.child.kill('SIGTERM');
  const code = await srv.exited;
  if (code !== 0) problem(`the server exited ${code} on SIGTERM`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(problems.length ? `FAILED: ${problems.length} problems (seed ${SEED})` : `passed (seed ${SEED})`);
process.exit(problems.length ? 1 : 0);
