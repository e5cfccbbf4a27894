import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Option } from 'clipanion';
import type { EnrolFormat } from '../client/api-client.js';
import { provision } from '../client/provision.js';
import { LitebootError } from '../errors.js';
import { positiveInt, usage } from './base.js';
import { ClientCommand } from './client-base.js';

export class NewDeviceCommand extends ClientCommand {
  static override paths = [['new-device']];
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: 'make a device key and CSR, enrol it, and write its certificate and key',
    details: `
      What \`new-device.sh\` did, in one step: a P-256 key, a CSR with a random UUID as CN
      (\`O=Test Vendor, CN=<uuid>, OU=Signing\` unless \`--org\`/\`--ou\`), enrolment with the bootstrap
      certificate over \`/cr\` in CBOR (\`--format json\` or \`p10\` for the other forms, \`est\` for EST
      simpleenroll, RFC 7030), and a check that the
      certificate returned is signed by \`certs/CA.crt\` for that key before \`certs/<uuid>.crt\` and
      \`certs/<uuid>.key\` (0600) are written. The server's certificate is checked against the CA and
      the hostname (the argument or \`--hostname\`, then \`.liteboot.toml\`'s \`hostname\`, then \`$CAHOSTNAME\`,
      then the system host name).

      For CI: \`--count N\` enrols N devices over \`--concurrency\` keep-alive connections, with a progress
      bar on a terminal (plain lines otherwise), retrying transient failures (connection refused or
      reset, 5xx) with backoff. \`--json\` prints one summary. The exit status is 0 only if every
      device was enrolled.

      Each key is written before its CSR is sent and each certificate as soon as it arrives. SIGINT or
      SIGTERM stops starting new devices; the requests in flight finish and are saved, then the
      summary is printed (\`interrupted: true\` with \`--json\`) and the exit status is 130 (SIGINT) or
      143 (SIGTERM). \`unsaved\` names every device the server issued whose certificate could not be
      saved (its key is on disk; \`liteboot cert get SERIAL\` fetches the certificate).
    `,
    examples: [
      ['Enrol one device with a server on localhost', '$0 new-device localhost'],
      ['Enrol 500 devices in CI and keep the summary', '$0 new-device ca.example.net --count 500 --concurrency 8 --json > devices.json'],
      ['Use the PKCS#10 upload instead', '$0 new-device localhost --format p10'],
      ['Enrol over EST (RFC 7030 simpleenroll)', '$0 new-device localhost --format est'],
    ],
  });

  host = Option.String({ required: false, name: 'hostname' });
  org = Option.String('--org', 'Test Vendor', { description: 'Organisation in the subject' });
  ou = Option.String('--ou', 'Signing', { description: 'Organisational unit in the subject ("" for none)' });
  format = Option.String('--format', 'cbor', { description: 'cbor (/cr, as devices do), json (/cr), p10 (/p10cr) or est (/.well-known/est/simpleenroll)' });
  count = Option.String('--count', '1', { description: 'How many devices to enrol' });
  concurrency = Option.String('--concurrency', '4', { description: 'Keep-alive connections to use with --count' });
  json = Option.Boolean('--json', false, { description: 'Print a JSON summary' });

  protected async run(): Promise<number> {
    if (!['cbor', 'json', 'p10', 'est'].includes(this.format)) throw usage(`--format must be cbor, json, p10 or est, not "${this.format}"`);
    const count = positiveInt(this.count, '--count')!;
    const concurrency = positiveInt(this.concurrency, '--concurrency')!;
    const certs = this.certsDir();
    let ca: X509Certificate;
    try {
      ca = new X509Certificate(readFileSync(certs.path('CA.crt')));
    } catch {
      throw new LitebootError('FILE_MISSING', `the CA certificate ${certs.path('CA.crt')} is missing or unreadable; copy it from the server (or pass --certs DIR)`);
    }
    const client = this.client({ kind: 'bootstrap' }, this.host, Math.min(concurrency, count));
    const progress = new Progress(this.context.stderr as NodeJS.WriteStream, count, !this.json && count > 1);
    // SIGINT/SIGTERM: start nothing new, let the requests in flight finish and be saved, then
    // report; a second signal quits at once (what is on disk stays: keys first, then certificates).
    const stop = new AbortController();
    let signalled: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) process.exit(EXIT_ON[sig] ?? 1);
      signalled = sig;
      stop.abort();
      this.context.stderr.write(`${progress.enabled && (this.context.stderr as NodeJS.WriteStream).isTTY ? '\n' : ''}liteboot: ${sig}: finishing the requests in flight (${sig} again to quit at once)\n`);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const r = await provision({
        client,
        ca,
        certs,
        org: this.org,
        ou: this.ou,
        format: this.format as EnrolFormat,
        count,
        concurrency,
        signal: stop.signal,
        onProgress: (done, failed) => progress.update(done, failed),
      });
      progress.end();
      const interrupted = signalled !== undefined;
      const issued = r.devices.length + r.unsaved.length;
      if (this.json) {
        this.printJson({
          requested: count,
          // `enrolled` (saved and checked) as before; `issued` counts what the server answered with.
          enrolled: r.devices.length,
          issued,
          saved: r.devices.length,
          failed: r.failures.length,
          unsaved: r.unsaved.map((u) => ({ uuid: u.uuid, serial: u.serial ?? null, key: u.keyFile ?? null, error: u.error })),
          interrupted,
          ...(signalled ? { signal: signalled } : {}),
          elapsedMs: r.elapsedMs,
          devices: r.devices.map((d) => ({ uuid: d.uuid, serial: d.serial, certificate: d.certFile, key: d.keyFile })),
          failures: r.failures.map((f) => ({ uuid: f.uuid, error: f.error, key: f.keyFile ?? null })),
        });
      } else if (count === 1 && r.devices.length === 1) {
        const d = r.devices[0]!;
        this.print(`enrolled ${d.uuid} (serial ${d.serial})`);
        this.print(`  ${d.certFile}`);
        this.print(`  ${d.keyFile}`);
      } else if (count > 1 || interrupted) {
        this.print(
          `${interrupted ? `interrupted (${signalled}): ` : ''}enrolled ${r.devices.length} of ${count} devices in ${(r.elapsedMs / 1000).toFixed(1)} s (${((r.devices.length * 1000) / Math.max(1, r.elapsedMs)).toFixed(0)}/s) into ${certs.dir}${r.unsaved.length ? `; ${r.unsaved.length} issued but not saved` : ''}`,
        );
      }
      if (!this.json) {
        for (const u of r.unsaved) this.context.stderr.write(`liteboot: issued but not saved: ${u.uuid}${u.serial !== undefined ? ` (serial ${u.serial}; \`liteboot cert get ${u.serial}\`)` : ''}: ${u.error}\n`);
        // One line per distinct reason, not per device.
        const reasons = new Map<string, number>();
        for (const f of r.failures) reasons.set(f.error, (reasons.get(f.error) ?? 0) + 1);
        for (const [why, n] of reasons) this.context.stderr.write(`liteboot: ${n > 1 ? `${n} devices failed: ` : ''}${why}\n`);
      }
      if (signalled) return EXIT_ON[signalled] ?? 1;
      return r.failures.length === 0 && r.unsaved.length === 0 ? 0 : 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      client.close();
    }
  }
}

/** The shell's convention: 128 + the signal number. */
const EXIT_ON: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** A progress bar with rate and ETA on a terminal; a line every 10% otherwise. */
class Progress {
  private readonly started = Date.now();
  private lastDecile = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly total: number,
    readonly enabled: boolean,
  ) {}

  update(done: number, failed: number): void {
    if (!this.enabled) return;
    const n = done + failed;
    const secs = (Date.now() - this.started) / 1000;
    const rate = n / Math.max(secs, 0.001);
    const eta = rate > 0 ? (this.total - n) / rate : 0;
    if (this.out.isTTY) {
      const width = 30;
      const filled = Math.round((n / this.total) * width);
      this.out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${n}/${this.total} ${rate.toFixed(0)}/s ETA ${eta.toFixed(0)}s${failed ? ` (${failed} failed)` : ''} `);
    } else {
      const decile = Math.floor((n / this.total) * 10);
      if (decile > this.lastDecile) {
        this.lastDecile = decile;
        this.out.write(`enrolled ${done}/${this.total}${failed ? `, ${failed} failed` : ''} (${rate.toFixed(0)}/s)\n`);
      }
    }
  }

  end(): void {
    if (this.enabled && this.out.isTTY) this.out.write('\n');
  }
}
