import { createHmac } from 'node:crypto';
import { LitebootError } from '../errors.js';

/** An IoT Hub service connection string: `HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`. */
export interface ConnectionString {
  hostName: string;
  keyName: string;
  /** The decoded key. */
  key: Buffer;
}

export function parseConnectionString(text: string): ConnectionString {
  const parts = new Map<string, string>();
  for (const part of text.trim().split(';')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 1) throw new LitebootError('BAD_CONFIG', 'the Azure connection string is not a list of Name=value parts separated by ;');
    parts.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const hostName = parts.get('HostName');
  const keyName = parts.get('SharedAccessKeyName');
  const key = parts.get('SharedAccessKey');
  if (!hostName || !keyName || !key) {
    throw new LitebootError('BAD_CONFIG', 'the Azure connection string needs HostName, SharedAccessKeyName and SharedAccessKey');
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key)) throw new LitebootError('BAD_CONFIG', 'the SharedAccessKey in the Azure connection string is not base64');
  return { hostName, keyName, key: Buffer.from(key, 'base64') };
}

/**
 * A shared access signature for the IoT Hub REST API: the string to sign is the URL-encoded
 * resource URI, a newline and the expiry in epoch seconds; the signature is base64 of its
 * HMAC-SHA256 under the decoded key.
 */
export function sasToken(cs: ConnectionString, expiresAt: number): string {
  const sr = encodeURIComponent(cs.hostName);
  const se = Math.floor(expiresAt / 1000);
  const sig = createHmac('sha256', cs.key).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=${encodeURIComponent(cs.keyName)}`;
}
