/**
 * What the authority, the store and the listeners report for monitoring, as plain calls: the
 * Prometheus side (src/server/prom-metrics.ts) is one implementation, `NO_METRICS` another, so
 * nothing below `server` knows prom-client. Every call is synchronous and allocation-light: it
 * runs on the request path.
 */
export type IssueResult = 'ok' | 'refused' | 'error';
export type TlsRefusal = 'handshake_timeout' | 'per_address' | 'revoked' | 'verify_failed' | 'handshake_failed';

export interface Metrics {
  /** One certificate request answered: issued, refused (a policy or caller error), or failed. */
  issued(via: 'cr' | 'p10cr' | 'kur' | 'est', result: IssueResult): void;
  /** One certificate or credential newly revoked, by RFC 5280 §5.3.1 CRLReason code. */
  revoked(reason: number): void;
  /** One HTTP request: `route` is the route table's pattern (never the raw path). */
  request(route: string, status: number, seconds: number): void;
  /** A connection refused at or right after the TLS handshake. */
  tlsRefused(listener: string, reason: TlsRefusal): void;
  /** One journal group commit made durable (write + fdatasync). */
  storeCommit(seconds: number): void;
}

const nothing = () => {};
export const NO_METRICS: Metrics = { issued: nothing, revoked: nothing, request: nothing, tlsRefused: nothing, storeCommit: nothing };
