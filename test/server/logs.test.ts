/**
 * `--log-format json`: every stderr line is one JSON object with stable fields, request lines
 * carry method, path, status, ms, by, serial (a decimal string) and code; `--log-level` drops
 * what is less severe.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyFile, cborCsrBody, curl, identity, newDevice, startServer } from '../helpers/server.js';

const CBOR = ['-H', 'Content-Type: application/cbor', '-H', 'Accept: application/cbor'];

describe('log format and level', () => {
  it('json: one object a line, with time, level, msg and the request fields', async () => {
    const s = await startServer({ args: ['--log-format', 'json'] });
    try {
      const dev = await newDevice(s.dir);
      const ok = curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]);
      assert.equal(ok.status, 200);
      // A path with a control character and a quote: JSON escapes them, the line stays one line.
      assert.equal(curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cs/%0a%22x', ['--path-as-is']).status, 400);
      await s.waitForStderr(/"path":"\/api\/v1\/cs\/%0a%22x"/);
      const lines = s.stderr().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const l of lines) {
        assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.ok(['debug', 'info', 'warn', 'error'].includes(String(l.level)), JSON.stringify(l));
        assert.equal(typeof l.msg, 'string');
      }
      const cr = lines.find((l) => l.msg === 'request' && l.path === '/api/v1/cr')!;
      assert.ok(cr, s.stderr());
      assert.equal(cr.method, 'POST');
      assert.equal(cr.status, 200);
      assert.equal(typeof cr.ms, 'number');
      assert.match(String(cr.by), /^bootstrap:\d+$/);
      assert.equal(typeof cr.serial, 'string');
      assert.match(String(cr.serial), /^[1-9]\d*$/);
      assert.equal(cr.code, undefined);
      const bad = lines.find((l) => l.msg === 'request' && l.status === 400)!;
      assert.equal(bad.code, 'BAD_SERIAL');
      assert.ok(lines.some((l) => l.level === 'info' && String(l.msg).startsWith('listening: ')));
    } finally {
      await s.stop();
      s.cleanup();
    }
  });

  it('level warn: no info lines, warnings still written (text format unchanged)', async () => {
    // allow_rebind = true: one warning at start.
    const s = await startServer({ args: ['--log-level', 'warn'], toml: 'allow_rebind = true' });
    try {
      const dev = await newDevice(s.dir);
      await s.waitForStderr(/WARN allow_rebind is on/);
      assert.equal(curl(s, identity(s.dir, 'BOOTSTRAP'), '/api/v1/cr', [...CBOR, '--data-binary', `@${bodyFile(s.dir, cborCsrBody(dev.csr))}`]).status, 200);
      await s.stop();
      assert.match(s.stderr(), /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN allow_rebind is on/m);
      assert.doesNotMatch(s.stderr(), / INFO |POST \/api\/v1\/cr/);
    } finally {
      await s.stop();
      s.cleanup();
    }
  });
});
