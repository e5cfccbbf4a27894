import { homedir } from 'node:os';
import { Option } from 'clipanion';
import { FILES } from '../ca/certs-dir.js';
import { setupBootstrap, setupCa, setupServer } from '../ca/setup.js';
import type { ServerFlags } from '../config.js';
import { configuredHostname, findConfigFile } from './locations.js';
import { recordHostnameQuietly } from './setup-ca.js';
import { ServerStartCommand, serve } from './server/start.js';

export class UpCommand extends ServerStartCommand {
  static override paths = [['up']];
  static override usage = ServerStartCommand.Usage({
    category: 'Server',
    description: 'set up what is missing, then start the server (the quick start)',
    details: `
      For a first run: creates the CA and server certificate (\`setup-ca\`, for the hostname), the
      server certificate alone when only it is missing (\`setup-server\`), and the bootstrap credential
      (\`setup-bootstrap\`) in the certs directory if they are not there yet, then runs \`server start\`
      with the same options. Existing files are used as they are, never replaced.

      The hostname is \`--hostname\`, then \`.liteboot.toml\`'s \`hostname\`, then \`localhost\`. The name a new
      server certificate is made for is recorded in \`.liteboot.toml\`, where \`server start\` and the device
      commands find it.
    `,
    examples: [
      ['Quick start on localhost', '$0 up'],
      ['Quick start for a host name devices use', '$0 up --hostname ca.example.net'],
    ],
  });

  override hostname = Option.String('--hostname', { description: "Host name for the server and a new server certificate (default: .liteboot.toml's hostname, then localhost)" });

  /** The quick start is for localhost unless told otherwise (not $CAHOSTNAME or the system host name). */
  protected override flags(): ServerFlags {
    const f = super.flags();
    if (f.hostname === undefined) {
      const file = findConfigFile(this.config, process.cwd(), homedir());
      if (!(file.exists && configuredHostname(file.path))) f.hostname = 'localhost';
    }
    return f;
  }

  protected override async run(): Promise<number> {
    const config = this.resolveConfig();
    const certs = this.certsDir();
    let madeServer = false;
    if (!certs.has(FILES.caCert)) {
      for (const p of (await setupCa({ certs, dbPath: config.dbPath, hostname: config.hostname, now: new Date() })).written) this.print(`wrote ${p}`);
      madeServer = true;
    } else if (!certs.has(FILES.serverCert) || !certs.has(FILES.serverKey)) {
      const made = await setupServer({ certs, caPassphrase: await this.caPassword(certs), hostname: config.hostname, now: new Date() });
      for (const [file, backup] of made.backups) this.print(`kept the old ${file} as ${backup}`);
      for (const p of made.written) this.print(`wrote ${p}`);
      madeServer = true;
    }
    if (madeServer) {
      const recorded = recordHostnameQuietly(this.context.stderr, config.hostname, this.config);
      if (recorded?.message) this.print(recorded.message);
    }
    if (!certs.has(FILES.bootstrapCert)) {
      for (const p of (await setupBootstrap({ certs, caPassphrase: await this.caPassword(certs), now: new Date() })).written) this.print(`wrote ${p}`);
    }
    return serve(config, this.context.stdout, await this.caPassword(certs));
  }
}
