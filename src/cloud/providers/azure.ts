import type { CloudConfig } from '../../config.js';
import { send } from '../http.js';
import { parseRetryAfter, RegistrationError, type DeviceToRegister, type Provider } from '../provider.js';
import { parseConnectionString, sasToken } from '../sas.js';

/**
 * Azure IoT Hub through its registry REST API (no CLI needed): PUT /devices/{id} with X.509 CA
 * authentication. A device that already exists (409) counts as registered.
 */
export function azureProvider(cfg: CloudConfig, now: () => number = Date.now): Provider {
  const cs = parseConnectionString(cfg.connectionString ?? '');
  const base = new URL(cfg.endpoint ?? `https://${cs.hostName}`);
  return {
    name: `azure (${cs.hostName})`,
    async register(d: DeviceToRegister, signal: AbortSignal): Promise<void> {
      const url = new URL(`/devices/${encodeURIComponent(d.deviceId)}`, base);
      url.searchParams.set('api-version', cfg.apiVersion);
      const body = Buffer.from(
        JSON.stringify({ deviceId: d.deviceId, status: 'enabled', authentication: { type: 'certificateAuthority' }, capabilities: { iotEdge: false } }),
      );
      const r = await send(url, {
        method: 'PUT',
        headers: { Authorization: sasToken(cs, now() + 3600_000), 'Content-Type': 'application/json' },
        body,
        timeoutMs: cfg.timeoutMs,
        signal,
        ca: cfg.ca,
      });
      if (r.status >= 200 && r.status < 300) return;
      if (r.status === 409) return; // already registered
      const detail = `${cs.hostName} answered HTTP ${r.status}${r.body ? `: ${r.body.slice(0, 160).replace(/\s+/g, ' ')}` : ''}`;
      if (r.status === 429) throw new RegistrationError(detail, false, parseRetryAfter(String(r.headers['retry-after'] ?? ''), now()));
      if (r.status === 401 || r.status === 403) throw new RegistrationError(`${detail} (check the connection string's key and policy)`);
      if (r.status >= 400 && r.status < 500) throw new RegistrationError(detail, true);
      throw new RegistrationError(detail);
    },
  };
}
