import { Builtins, Cli } from 'clipanion';
import { AuditShowCommand } from './commands/audit/show.js';
import { AuditVerifyCommand } from './commands/audit/verify.js';
import { CakeyDecryptCommand, CakeyEncryptCommand } from './commands/cakey/encrypt.js';
import { CakeyGetpubCommand } from './commands/cakey/getpub.js';
import { CertGetCommand } from './commands/cert/get.js';
import { CertRevokeCommand } from './commands/cert/revoke.js';
import { CertStatusCommand } from './commands/cert/status.js';
import { CloudSettingsCommand } from './commands/cloud/settings.js';
import { CrlCommand } from './commands/crl.js';
import { DbBackupCommand } from './commands/db/backup.js';
import { DbCopyCommand } from './commands/db/copy.js';
import { DbMigrateCommand } from './commands/db/migrate.js';
import { DecodeCborCommand } from './commands/decode-cbor.js';
import { DeviceAllowCommand, DeviceDisallowCommand } from './commands/device/allow.js';
import { DeviceListCommand } from './commands/device/list.js';
import { DeviceRegisterCommand } from './commands/device/register.js';
import { DeviceRekeyCommand } from './commands/device/rekey.js';
import { DeviceStatusCommand } from './commands/device/status.js';
import { NewDeviceCommand } from './commands/new-device.js';
import { InspectCommand } from './commands/inspect.js';
import { OperatorCreateCommand } from './commands/operator/create.js';
import { SetupBootstrapCommand } from './commands/setup-bootstrap.js';
import { SetupCaCommand } from './commands/setup-ca.js';
import { SetupOcspCommand } from './commands/setup-ocsp.js';
import { UpCommand } from './commands/up.js';
import { ServerStartCommand } from './commands/server/start.js';
import { StatusCommand } from './commands/status.js';
import { version } from './version.js';


export function makeCli(): Cli {
  const cli = new Cli({ binaryLabel: 'liteboot', binaryName: 'liteboot', binaryVersion: version, enableColors: false });
  const commands = [
    // set-up
    SetupCaCommand, SetupBootstrapCommand, OperatorCreateCommand, SetupOcspCommand, CakeyGetpubCommand, CakeyEncryptCommand, CakeyDecryptCommand,
    // server
    UpCommand, ServerStartCommand,
    // devices and certificates
    NewDeviceCommand, DeviceStatusCommand, DeviceRekeyCommand, DeviceListCommand, DeviceRegisterCommand, DeviceAllowCommand, DeviceDisallowCommand, CertStatusCommand, CertGetCommand, CertRevokeCommand, CrlCommand, CloudSettingsCommand,
    // operations
    AuditVerifyCommand, AuditShowCommand, DbBackupCommand, DbCopyCommand, DbMigrateCommand, StatusCommand,
    // tools
    InspectCommand, DecodeCborCommand,
  ];
  for (const c of commands) cli.register(c);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  return cli;
}

/** Runs the CLI; a usage mistake (unknown command, bad flag) prints to stderr and exits 2. */
export async function main(argv: string[]): Promise<number> {
  const cli = makeCli();
  const context = { ...Cli.defaultContext, colorDepth: 1 };
  let command;
  try {
    command = cli.process(argv, context);
  } catch (e) {
    process.stderr.write(cli.error(e, { colored: false }));
    return 2;
  }
  return cli.run(command, context);
}

process.exitCode = await main(process.argv.slice(2));
