import { createHmac } from 'node:crypto';
import type { CloudConfig } from '../../config.js';
import { send } from '../http.js';
import { parseRetryAfter, RegistrationError, type DeviceToRegister, type Provider } from '../provider.js';

export const SIGNATURE_HEADER = 'X-Liteboot-Signature';

/**
 * POSTs `{"deviceId", "serial", "certificate", "issuedAt"}` to a URL, signed with
 * `X-Liteboot-Signature: sha256=<hex HMAC-SHA256 of the body>`; any 2xx registers.
 * The serial is a decimal string: it exceeds 2^53.
 */
export function webhookProvider(cfg: CloudConfig, now: () => number = Date.now): Provider {
  const url = new URL(cfg.url ?? '');
  const secret = cfg.secret ?? '';
  return {
    name: `webhook (${url.host})`,
    async register(d: DeviceToRegister, signal: AbortSignal): Promise<void> {
      const body = Buffer.from(JSON.stringify({ deviceId: d.deviceId, serial: d.serial.toString(), certificate: d.certificatePem, issuedAt: d.issuedAt.toISOString() }));
      const sig = createHmac('sha256', secret).update(body).digest('hex');
      const r = await send(url, { method: 'POST', headers: { 'Content-Type': 'application/json', [SIGNATURE_HEADER]: `sha256=${sig}` }, body, timeoutMs: cfg.timeoutMs, signal, ca: cfg.ca });
      if (r.status >= 200 && r.status < 300) return;
      const detail = `${url.host} answered HTTP ${r.status}`;
      if (r.status === 429 || r.status === 503) throw new RegistrationError(detail, false, parseRetryAfter(String(r.headers['retry-after'] ?? ''), now()));
      throw new RegistrationError(detail);
    },
  };
}
