import type { CloudConfig } from '../../config.js';
import type { Provider } from '../provider.js';
import { azureCliProvider } from './azure-cli.js';
import { azureProvider } from './azure.js';
import { webhookProvider } from './webhook.js';

/** The configured provider; undefined for `none`. */
export function makeProvider(cfg: CloudConfig): Provider | undefined {
  switch (cfg.provider) {
    case 'azure':
      return azureProvider(cfg);
    case 'azure-cli':
      return azureCliProvider(cfg);
    case 'webhook':
      return webhookProvider(cfg);
    case 'none':
      return undefined;
  }
}
