import { Option } from 'clipanion';
import { resolve } from 'node:path';
import { FILES } from '../ca/certs-dir.js';
import { setupBootstrap, setupCa } from '../ca/setup.js';
import { BaseCommand } from './base.js';

export class UpCommand extends BaseCommand {
  static override paths = [['up']];
  static override usage = BaseCommand.Usage({
    category: 'Server',
    description: 'set up what is missing, then start the server (the quick start)',
    details: `
      For a first run on a laptop: creates the CA and server certificate (\`setup-ca\`) and the
      bootstrap credential (\`setup-bootstrap\`) in the certs directory if they are not there yet,
      then starts the server. Existing files are used as they are, never replaced.
    `,
    examples: [
      ['Quick start on localhost', '$0 up'],
      ['Quick start for a host name devices use', '$0 up --hostname ca.example.net'],
    ],
  });

  hostname = Option.String('--hostname', 'localhost', { description: 'Host name for a new server certificate (default localhost)' });
  db = Option.String('--db', 'CADB.db', { description: 'The database path' });

  protected async run(): Promise<number> {
    const certs = this.certsDir();
    if (!certs.has(FILES.caCert)) {
      for (const p of setupCa({ certs, dbPath: resolve(this.db), hostname: this.hostname, now: new Date() })) this.print(`wrote ${p}`);
    }
    if (!certs.has(FILES.bootstrapCert)) {
      for (const p of setupBootstrap({ certs, now: new Date() })) this.print(`wrote ${p}`);
    }
    this.print(`CA and bootstrap credential ready in ${certs.dir}.`);
    this.print('The server (`liteboot server start`) is not part of this build yet; set-up stops here.');
    return 0;
  }
}
