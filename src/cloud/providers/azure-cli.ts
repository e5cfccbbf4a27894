import { execFile } from 'node:child_process';
import type { CloudConfig } from '../../config.js';
import { RegistrationError, type DeviceToRegister, type Provider } from '../provider.js';

/** The original's behaviour: `az iot hub device-identity create ... --auth-method x509_ca`. */
export function azureCliProvider(cfg: CloudConfig): Provider {
  return {
    name: `azure-cli (hub ${cfg.hubname})`,
    register(d: DeviceToRegister, signal: AbortSignal): Promise<void> {
      const args = ['iot', 'hub', 'device-identity', 'create', '--device-id', d.deviceId, '--auth-method', 'x509_ca', '--resource-group', cfg.resourcegroup, '--hub-name', cfg.hubname];
      return new Promise((resolve, reject) => {
        execFile(cfg.azCommand, args, { timeout: cfg.timeoutMs, signal, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
          if (!err) return resolve();
          // A device the hub already has is registered.
          if (/already exists|DeviceAlreadyExists/i.test(stderr)) return resolve();
          const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${cfg.azCommand} not found (install the Azure CLI or set [cloud] az_command)` : stderr.trim().split('\n').pop() || err.message;
          reject(new RegistrationError(`az failed: ${why}`));
        });
      });
    },
  };
}
