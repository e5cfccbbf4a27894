import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Option } from 'clipanion';
import { ApiClient } from '../client/api-client.js';
import { loadServerConfig, scriptHostname } from '../config.js';
import type { Format } from '../protocol/format.js';
import { BaseCommand, parseWire, positiveInt, readCredential, usage } from './base.js';

/** Which credential in the certs directory a command presents. */
export type Credential = { kind: 'bootstrap' } | { kind: 'device'; uuid: string } | { kind: 'operator'; name: string };

/** What the device-side commands share: where the server is and which credential to present. */
export abstract class ClientCommand extends BaseCommand {
  hostname = Option.String('--hostname', { description: 'Server host name (default: $CAHOSTNAME, then the system host name)' });
  port = Option.String('--port', { description: 'Server port (default: .liteboot.toml, then 1443)' });
  config = Option.String('--config', { description: 'Configuration file to read the port from' });
  wire = Option.String('--wire', 'cbor', { description: 'Request format: cbor (as devices do) or json' });

  protected override checkOptions(): void {
    parseWire(this.wire);
  }

  protected wireFormat(): Format {
    return parseWire(this.wire);
  }

  protected endpoint(hostArg?: string): { host: string; port: number } {
    const host = scriptHostname(hostArg ?? this.hostname, process.env);
    const flagPort = positiveInt(this.port, '--port');
    if (flagPort !== undefined) {
      if (flagPort > 65535) throw usage(`--port must be a port number, not ${flagPort}`);
      return { host, port: flagPort };
    }
    const cfg = loadServerConfig({ configPath: this.config, cwd: process.cwd(), home: homedir(), env: process.env, flags: {}, certsDir: resolve(this.certs), dbPath: '' });
    return { host, port: cfg.port };
  }

  protected credentialFiles(c: Credential): { cert: string; key: string; what: string } {
    const base = c.kind === 'bootstrap' ? 'BOOTSTRAP' : c.kind === 'device' ? c.uuid : `OPERATOR-${c.name}`;
    const what = c.kind === 'bootstrap' ? 'the bootstrap credential' : c.kind === 'device' ? `device ${c.uuid}` : `operator ${c.name}`;
    return { cert: `${base}.crt`, key: `${base}.key`, what };
  }

  protected client(c: Credential, hostArg?: string, connections = 1): ApiClient {
    // A plain join, not this.certsDir(): CertsDir loads the ASN.1 modules, which slow every status command.
    const certs = { path: (name: string) => join(resolve(this.certs), name) };
    const f = this.credentialFiles(c);
    const hint = c.kind === 'bootstrap' ? 'run `liteboot setup-bootstrap`' : c.kind === 'device' ? 'enrol it with `liteboot new-device`' : `run \`liteboot operator create ${c.name}\``;
    const read = (name: string, what: string, kind: 'certificate' | 'key', fix: string) => readCredential(certs.path(name), what, kind, fix);
    const { host, port } = this.endpoint(hostArg);
    return new ApiClient({ host, port, ca: read('CA.crt', 'the CA certificate', 'certificate', 'copy CA.crt there or run `liteboot setup-ca`'), cert: read(f.cert, `the certificate of ${f.what}`, 'certificate', hint), key: read(f.key, `the key of ${f.what}`, 'key', hint), connections });
  }
}

/** A decimal serial from the command line. */
export function serialArg(text: string): bigint {
  // Up to 40 digits: bootstrap and operator credentials carry 127-bit serials.
  if (!/^[0-9]{1,40}$/.test(text)) throw usage(`"${text}" is not a decimal certificate serial`);
  return BigInt(text);
}
