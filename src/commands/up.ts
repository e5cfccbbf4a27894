import { Option } from 'clipanion';
import { FILES } from '../ca/certs-dir.js';
import { setupBootstrap, setupCa } from '../ca/setup.js';
import { ServerStartCommand, serve } from './server/start.js';

export class UpCommand extends ServerStartCommand {
  static override paths = [['up']];
  static override usage = ServerStartCommand.Usage({
    category: 'Server',
    description: 'set up what is missing, then start the server (the quick start)',
    details: `
      For a first run: creates the CA and server certificate (\`setup-ca\`, for the hostname) and the
      bootstrap credential (\`setup-bootstrap\`) in the certs directory if they are not there yet, then
      runs \`server start\` with the same options. Existing files are used as they are, never replaced.
    `,
    examples: [
      ['Quick start on localhost', '$0 up'],
      ['Quick start for a host name devices use', '$0 up --hostname ca.example.net'],
    ],
  });

  override hostname = Option.String('--hostname', 'localhost', { description: 'Host name for the server (and a new server certificate)' });

  protected override async run(): Promise<number> {
    const config = this.resolveConfig();
    const certs = this.certsDir();
    if (!certs.has(FILES.caCert)) {
      for (const p of await setupCa({ certs, dbPath: config.dbPath, hostname: config.hostname, now: new Date() })) this.print(`wrote ${p}`);
    }
    if (!certs.has(FILES.bootstrapCert)) {
      for (const p of (await setupBootstrap({ certs, caPassphrase: await this.caPassword(certs), now: new Date() })).written) this.print(`wrote ${p}`);
    }
    return serve(config, this.context.stdout, await this.caPassword(certs));
  }
}
