/**
 * The metrics listener, read as Prometheus would: the exposition is checked line by line by a
 * strict reader (test/helpers/exposition.ts), and its counters follow what the test does on the
 * real REST API (an issuance, a 409 refusal, a revocation, a TLS refusal of the revoked
 * certificate). /readyz turns 503 when the journal really fails (a file size limit, EFBIG).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { toPem } from '../../src/asn1/pem.js';
import { parseExposition, value, type Family } from '../helpers/exposition.js';
import { liteboot } from '../helpers/run.js';
import { bodyFile, cborCsrBody, curl, identity, newDevice, startServer, type Identity, type TestServer } from '../helpers/server.js';

function get(port: number, path: string): { status: number; body: string; type: string } {
  const r = spawnSync('curl', ['-sS', '-i', `http://127.0.0.1:${port}${path}`], { encoding: 'utf8', timeout: 30_000 });
  const end = r.stdout.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no answer from ${path}: ${r.stderr}`);
  const head = r.stdout.slice(0, end);
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0), body: r.stdout.slice(end + 4), type: /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? '' };
}

function scrape(s: TestServer): Map<string, Family> {
  const r = get(s.metricsPort, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

const CBOR = ['-H', 'Content-Type: application/cbor', '-H', 'Accept: application/cbor'];

/** cr for `dev` with the bootstrap credential; the certificate as files a client can use. */
function enrol(s: TestServer, csr: Buffer): { status: number; id?: Identity; serialHex?: string } {
  const r = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(csr))}`]);
  if (r.status !== 200) return { status: r.status };
  const der = r.body.subarray(7);
  const cert = join(s.dir, `dev-${Math.random().toString(16).slice(2)}.crt`);
  writeFileSync(cert, toPem('CERTIFICATE', der));
  const serialHex = spawnSync('openssl', ['x509', '-noout', '-serial', '-in', cert], { encoding: 'utf8' }).stdout.trim().split('=')[1]!;
  return { status: 200, id: { cert, key: '' }, serialHex };
}

describe('GET /metrics on the metrics listener', () => {
  let s: TestServer;
  before(async () => {
    // device_days 20: every certificate issued falls in liteboot_certificates_expiring{within="30d"}.
    s = await startServer({ toml: 'device_days = 20' });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('is a valid exposition whose counters follow issuance, refusal, revocation and a TLS refusal', async () => {
    assert.ok(s.metricsPort > 0, s.stdout());
    const a = await newDevice(s.dir);
    const issued = enrol(s, a.csr);
    assert.equal(issued.status, 200);
    issued.id!.key = a.keyFile;
    const b = await newDevice(s.dir);
    assert.equal(enrol(s, b.csr).status, 200);
    // The same id with another key: 409 DEVICE_BOUND, a refusal.
    const again = await newDevice(s.dir, undefined, a.id);
    assert.equal(enrol(s, again.csr).status, 409);
    // A status request by serial: counted under the route's pattern, not the path.
    assert.equal(curl(s, issued.id, `/api/v1/cs/${BigInt('0x' + issued.serialHex!)}`).status, 200);
    // The operator revokes a's certificate (keyCompromise); then a's certificate is refused in TLS.
    const k = curl(s, identity(s.dir, 'OPERATOR-alice'), '/api/v1/krr', ['-H', 'Content-Type: application/json', '--data-binary', `{"Serial":${BigInt('0x' + issued.serialHex!)},"Reason":1}`]);
    assert.equal(k.status, 200, k.body.toString());
    const refused = curl(s, issued.id, '/api/v1/ccs');
    assert.equal(refused.status, 0, 'refused in TLS');

    const m = scrape(s);
    assert.equal(value(m, 'liteboot_certificates_issued_total', { via: 'cr', result: 'ok' }), 2);
    assert.equal(value(m, 'liteboot_certificates_issued_total', { via: 'cr', result: 'refused' }), 1);
    assert.equal(value(m, 'liteboot_certificates_issued_total', { via: 'cr', result: 'error' }), 0);
    assert.equal(value(m, 'liteboot_certificates_revoked_total', { reason: 'keyCompromise' }), 1);
    assert.equal(value(m, 'liteboot_tls_refused_total', { listener: 'api', reason: 'revoked' }), 1);
    assert.equal(value(m, 'liteboot_http_requests_total', { route: '/api/v1/cr', status: '200' }), 2);
    assert.equal(value(m, 'liteboot_http_requests_total', { route: '/api/v1/cr', status: '409' }), 1);
    assert.equal(value(m, 'liteboot_http_requests_total', { route: '/api/v1/cs/:serial', status: '200' }), 1);
    assert.ok(m.get('liteboot_http_requests_total')!.samples.every((x) => !/\d{6}/.test(x.labels.route!)), 'no raw path in a route label');
    assert.equal(value(m, 'liteboot_http_request_duration_seconds', { route: '/api/v1/cr' }, 'liteboot_http_request_duration_seconds_count'), 3);
    assert.equal(m.get('liteboot_http_request_duration_seconds')!.type, 'histogram');
    // Two certificates and a revocation at least: three group commits, each timed.
    assert.ok(value(m, 'liteboot_store_commit_seconds', {}, 'liteboot_store_commit_seconds_count') >= 3);
    // The gauges (first counted at this scrape): b's certificate is valid, a's revoked; both devices have no cloud provider.
    assert.equal(value(m, 'liteboot_certificates_valid'), 1);
    assert.equal(value(m, 'liteboot_certificates_expiring', { within: '30d' }), 1);
    assert.equal(value(m, 'liteboot_registrations', { state: 'none' }), 2);
    // collectDefaultMetrics on our registry.
    assert.ok(m.has('process_cpu_user_seconds_total') && m.has('nodejs_eventloop_lag_seconds'));
  });

  it('liteboot status prints the same counts, for a person and as JSON', () => {
    const at = `127.0.0.1:${s.metricsPort}`;
    const j = liteboot(['status', '--json', '--metrics-listen', at], { cwd: s.dir });
    assert.equal(j.code, 0, j.stderr);
    const st = JSON.parse(j.stdout);
    assert.equal(st.address, at);
    assert.equal(st.healthy, true);
    assert.equal(st.ready, true);
    assert.deepEqual(st.issued, { ok: 2, refused: 1, error: 0 });
    assert.equal(st.revoked, 1);
    assert.equal(st.validCertificates, 1);
    assert.equal(st.expiringWithin30d, 1);
    assert.equal(st.registrations.none, 2);
    assert.equal(st.tlsRefused, 1);
    assert.match(st.startedAt, /^\d{4}-\d\d-\d\dT/);
    const text = liteboot(['status', '--metrics-listen', at], { cwd: s.dir });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^  ready: +yes$/m);
    assert.match(text.stdout, /^  certificates: +2 issued, 1 refused, 0 failed; 1 revoked/m);
    // Nobody there: one line, exit 1.
    const none = liteboot(['status', '--metrics-listen', '127.0.0.1:1'], { cwd: s.dir });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^liteboot: no liteboot metrics listener answers at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/);
  });

  it('answers /healthz and /readyz, and nothing else', () => {
    assert.deepEqual([get(s.metricsPort, '/healthz').status, get(s.metricsPort, '/healthz').body], [200, 'ok\n']);
    assert.equal(get(s.metricsPort, '/readyz').status, 200);
    assert.equal(get(s.metricsPort, '/nope').status, 404);
  });
});

describe('/readyz when the journal cannot be written', () => {
  let s: TestServer;
  before(async () => {
    // A real write failure: the kernel refuses to grow any file past 24 KiB (RLIMIT_FSIZE, EFBIG;
    // Node ignores SIGXFSZ). The database and certificates exist already; the journal is new
    // and grows by about 1.5 KB per certificate, so it reaches the limit after a dozen.
    s = await startServer({ shell: 'ulimit -f 48', toml: 'audit_log = ""' });
  });
  after(async () => {
    await s.stop();
    s.cleanup();
  });

  it('is 200 while writes succeed, 503 with the reason once the journal has failed', async () => {
    assert.equal(get(s.metricsPort, '/readyz').status, 200);
    let failedAt = 0;
    for (let i = 1; i <= 60 && failedAt === 0; i++) {
      const r = enrol(s, (await newDevice(s.dir)).csr);
      if (r.status !== 200) {
        assert.equal(r.status, 500);
        failedAt = i;
      }
    }
    assert.ok(failedAt > 1, `the journal failed at certificate ${failedAt}`);
    const ready = get(s.metricsPort, '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /^not ready: the database cannot be written: cannot write the journal .*EFBIG/);
    assert.equal(get(s.metricsPort, '/healthz').status, 200, 'the process still answers');
    const st = liteboot(['status', '--metrics-listen', `127.0.0.1:${s.metricsPort}`], { cwd: s.dir });
    assert.equal(st.code, 1, 'not ready: exit 1');
    assert.match(st.stdout, /^  ready: +no: the database cannot be written: cannot write the journal/m);
    const m = scrape(s);
    assert.equal(value(m, 'liteboot_certificates_issued_total', { via: 'cr', result: 'error' }), 1);
    assert.equal(value(m, 'liteboot_certificates_issued_total', { via: 'cr', result: 'ok' }), failedAt - 1);
  });
});

describe('the exposition reader refuses what Prometheus would', () => {
  const ok = '# HELP h_seconds x\n# TYPE h_seconds histogram\nh_seconds_bucket{le="1"} 1\nh_seconds_bucket{le="+Inf"} 2\nh_seconds_sum 3\nh_seconds_count 2\n';
  it('reads a good histogram', () => assert.equal(value(parseExposition(ok), 'h_seconds', {}, 'h_seconds_count'), 2));
  for (const [why, text, error] of [
    ['+Inf bucket is not _count', ok.replace('h_seconds_count 2', 'h_seconds_count 3'), /\+Inf bucket 2 is not _count 3/],
    ['buckets not cumulative', ok.replace('le="1"} 1', 'le="1"} 5'), /not cumulative/],
    ['no +Inf bucket', ok.replace('h_seconds_bucket{le="+Inf"} 2\n', ''), /no \+Inf bucket/],
    ['a sample before its TYPE', 'c_total 1\n# TYPE c_total counter\n', /outside its family/],
    ['a bad label name', '# TYPE c_total counter\nc_total{1a="x"} 1\n', /bad label syntax/],
    ['an unescaped quote', '# TYPE c_total counter\nc_total{a="x"y"} 1\n', /bad label syntax|not separated/],
    ['a bad value', '# TYPE g gauge\ng 1,5\n', /bad value/],
    ['a series twice', '# TYPE g gauge\ng{a="1"} 1\ng{a="1"} 2\n', /twice/],
    ['a family in two blocks', '# TYPE g gauge\ng 1\n# TYPE h gauge\nh 1\n# HELP g again\n', /two blocks/],
    ['no final newline', '# TYPE g gauge\ng 1', /newline/],
  ] as const) {
    it(`refuses ${why}`, () => assert.throws(() => parseExposition(text), error));
  }
});
