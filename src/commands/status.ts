import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { Option } from 'clipanion';
import { fetchServerStatus } from '../client/server-status.js';
import { loadServerConfig, parseListen } from '../config.js';
import { LitebootError } from '../errors.js';
import { BaseCommand } from './base.js';

export class StatusCommand extends BaseCommand {
  static override paths = [['status']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Operations',
    description: "show a running server's health, readiness and counts",
    details: `
      Asks the server's metrics listener (\`--metrics-listen\`, else \`metrics_listen\` from
      \`.liteboot.toml\`, else 127.0.0.1:9464) for \`/healthz\`, \`/readyz\` and \`/metrics\`, and prints
      whether it answers, whether it can issue (and why not), the certificates issued, refused and
      failed since it started, revocations, valid and soon-expiring certificates, registrations by
      state and TLS refusals. Exits 0 when the server is ready, 1 otherwise.
    `,
    examples: [
      ['The server started from this directory', '$0 status'],
      ['For a script', '$0 status --json --metrics-listen 127.0.0.1:9464'],
    ],
  });

  config = Option.String('--config', { description: 'Configuration file (default ./.liteboot.toml, then ~/.liteboot.toml)' });
  metricsListen = Option.String('--metrics-listen', { description: "The server's metrics listener, host:port" });
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  protected async run(): Promise<number> {
    const at =
      this.metricsListen !== undefined
        ? parseListen(this.metricsListen, 'command line')
        : loadServerConfig({ configPath: this.config, cwd: process.cwd(), home: homedir(), env: process.env, flags: {}, certsDir: resolve(this.certs), dbPath: resolve('CADB.db') }).metricsListen;
    if (!at) throw new LitebootError('USAGE', 'metrics_listen is off in the configuration; pass --metrics-listen host:port');
    const host = at.host === '0.0.0.0' ? '127.0.0.1' : at.host === '::' ? '::1' : at.host;
    const s = await fetchServerStatus(host.includes(':') ? `[${host}]:${at.port}` : `${host}:${at.port}`);
    if (this.json) {
      this.printJson(s);
    } else {
      const regs = Object.entries(s.registrations).map(([k, v]) => `${k} ${v}`).join(', ');
      this.print(`liteboot server at ${s.address}${s.startedAt ? `, up since ${s.startedAt}` : ''}`);
      this.print(`  health:         ${s.healthy ? 'ok' : 'not ok'}`);
      this.print(`  ready:          ${s.ready ? 'yes' : `no: ${s.notReady}`}`);
      this.print(`  certificates:   ${s.issued.ok} issued, ${s.issued.refused} refused, ${s.issued.error} failed; ${s.revoked} revoked (since start)`);
      this.print(`  valid now:      ${s.validCertificates} (${s.expiringWithin30d} expire within 30 days)`);
      this.print(`  registrations:  ${regs || 'none'}`);
      this.print(`  TLS refusals:   ${s.tlsRefused}; HTTP requests: ${s.httpRequests}`);
    }
    return s.ready && s.healthy ? 0 : 1;
  }
}
