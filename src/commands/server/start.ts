import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { Option } from 'clipanion';
import { describeDb, loadServerConfig, type ServerConfig, type ServerFlags } from '../../config.js';
import { streamLogger } from '../../log.js';
import { startServer } from '../../server/app.js';
import { version } from '../../version.js';
import { BaseCommand } from '../base.js';
import { CaCommand } from '../ca-password.js';

export class ServerStartCommand extends CaCommand {
  static override paths = [['server', 'start']];
  static override usage = BaseCommand.Usage({
    category: 'Server',
    description: 'run the REST API and the mTLS check listener',
    details: `
      Serves the device API (\`/api/v1/cr\`, \`p10cr\`, \`cs\`, \`ds\`, \`cc\`, \`ccs\`, \`kur\`, \`krr\`, \`crl\`) over mutual TLS
      on \`port\`, the mTLS check listener on \`mport\` and the public CRL/OCSP listener (plain HTTP) on
      \`http_port\`, recording every certificate in the database,
      until SIGINT or SIGTERM; then it stops accepting, finishes what is in flight and closes the
      database cleanly.

      Settings come from the flags, then \`.liteboot.toml\` (\`[server]\` table; current directory, then
      home directory, or \`--config\`), then defaults. The hostname: \`--hostname\`, the file's \`hostname\`,
      \`$CAHOSTNAME\`, the system host name, \`localhost\`. One log line per request goes to stderr.
    `,
    examples: [
      ['Serve with the settings in .liteboot.toml', '$0 server start'],
      ['Serve on other ports, for a hub', '$0 server start -p 2443 -m 9443 --hubname my-hub'],
      ['Listen only on loopback', '$0 server start --listen 127.0.0.1'],
    ],
  });

  config = Option.String('--config', { description: 'Configuration file (default ./.liteboot.toml, then ~/.liteboot.toml)' });
  db = Option.String('--db', { description: 'The database: a path (default CADB.db) or postgres://user@host:port/dbname; also [server] db or $LITEBOOT_DB' });
  hostname = Option.String('--hostname', { description: 'Host name devices use to reach the server' });
  port = Option.String('-p,--port', { description: 'REST API port (default 1443)' });
  mport = Option.String('-m,--mport', { description: 'mTLS check listener port (default 8443)' });
  httpPort = Option.String('--http-port', { description: 'Public CRL/OCSP listener port (default 8080; 0 turns it off)' });
  hubname = Option.String('--hubname', { description: 'Azure IoT Hub short name returned by ccs' });
  resourcegroup = Option.String('--resourcegroup', { description: 'Azure resource group' });
  mqttport = Option.String('--mqttport', { description: 'MQTT port returned by ccs (default 8883)' });
  listen = Option.String('--listen', { description: 'Address to listen on (default: every interface)' });
  metricsListen = Option.String('--metrics-listen', { description: 'Metrics and health listener, host:port (default 127.0.0.1:9464; "" turns it off)' });
  logFormat = Option.String('--log-format', { description: 'Log lines on stderr: text (default) or json' });
  logLevel = Option.String('--log-level', { description: 'Least severe level logged: debug, info (default), warn, error' });

  protected flags(): ServerFlags {
    return {
      db: this.db,
      hostname: this.hostname,
      port: this.port,
      mport: this.mport,
      http_port: this.httpPort,
      hubname: this.hubname,
      resourcegroup: this.resourcegroup,
      mqttport: this.mqttport,
      listen: this.listen,
      metrics_listen: this.metricsListen,
      log_format: this.logFormat,
      log_level: this.logLevel,
    };
  }

  protected resolveConfig(): ServerConfig {
    return loadServerConfig({
      configPath: this.config,
      cwd: process.cwd(),
      home: homedir(),
      env: process.env,
      flags: this.flags(),
      certsDir: resolve(this.certs),
    });
  }

  protected async run(): Promise<number> {
    const config = this.resolveConfig();
    return serve(config, this.context.stdout, await this.caPassword());
  }
}

/** Runs the server until SIGINT/SIGTERM; resolves with the exit status. */
export async function serve(config: ServerConfig, stdout: NodeJS.WritableStream, caPassphrase?: string): Promise<number> {
  const log = streamLogger(process.stderr, undefined, { format: config.logFormat, level: config.logLevel });
  const running = await startServer({ config, log, version, caPassphrase });
  // The signal handlers go in before the "serving" line: whoever reacts to that line may signal at once.
  const stopped = new Promise<number>((done) => {
    const shutdown = (signal: string) => {
      log.info(`${signal}: stopping (finishing requests in flight, then closing the database)`);
      running.stop().then(
        () => {
          log.info('stopped cleanly');
          log.flush();
          done(0);
        },
        (e: Error) => {
          log.error(`shutdown failed: ${e.message}`);
          log.flush();
          done(1);
        },
      );
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
  const pub = running.httpPort !== 0 ? `, CRL and OCSP on http://${config.hostname}:${running.httpPort}/` : '';
  const metrics = running.metricsAddress ? `, metrics on http://${running.metricsAddress}/metrics` : '';
  stdout.write(
    `liteboot ${version} serving https://${config.hostname}:${running.apiPort}/api/v1 (mTLS check on port ${running.mtlsPort}${pub}${metrics}, database ${describeDb(config.db)}${config.configFile ? `, settings from ${config.configFile}` : ''})\n`,
  );
  log.info(`listening: api=${running.apiPort} mtls=${running.mtlsPort} http=${running.httpPort} metrics=${running.metricsAddress ?? 'off'}`);
  return stopped;
}
