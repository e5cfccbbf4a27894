import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metrics, IssueResult, TlsRefusal } from '../metrics.js';
import type { FleetCounts } from '../store/types.js';

/** RFC 5280 §5.3.1 CRLReason names, by code (7 is unused). */
const REASON_NAMES = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold', '7', 'removeFromCRL', 'privilegeWithdrawn', 'aACompromise'];

export interface PromMetricsOptions {
  /** The fleet counts (a table scan): called at most once per `gaugeMaxAgeMs`, on a scrape. */
  fleet: (at: Date, expiringBefore: Date) => Promise<FleetCounts>;
  clock: () => Date;
  /** How old the gauges' counts may be; default 15 s. */
  gaugeMaxAgeMs?: number;
}

const DAY_MS = 86_400_000;

/**
 * The Prometheus side of `Metrics`, on a registry of its own (not prom-client's global one, so
 * that two servers in one process, as in tests, do not share counters).
 */
export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly issuedTotal: Counter<'via' | 'result'>;
  private readonly revokedTotal: Counter<'reason'>;
  private readonly requests: Counter<'route' | 'status'>;
  private readonly durations: Histogram<'route'>;
  private readonly tls: Counter<'listener' | 'reason'>;
  private readonly commits: Histogram;
  private fleet: { at: number; counts: Promise<FleetCounts> } | undefined;

  constructor(private readonly o: PromMetricsOptions) {
    const registers = [this.registry];
    this.issuedTotal = new Counter({ name: 'liteboot_certificates_issued_total', help: 'Certificate requests answered, by channel and outcome (refused: the caller\'s fault; error: the CA\'s).', labelNames: ['via', 'result'], registers });
    this.revokedTotal = new Counter({ name: 'liteboot_certificates_revoked_total', help: 'Certificates and credentials revoked, by CRL reason.', labelNames: ['reason'], registers });
    this.requests = new Counter({ name: 'liteboot_http_requests_total', help: 'HTTP requests answered, by route pattern and status.', labelNames: ['route', 'status'], registers });
    this.durations = new Histogram({ name: 'liteboot_http_request_duration_seconds', help: 'Time from request to answer, by route pattern.', labelNames: ['route'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.tls = new Counter({ name: 'liteboot_tls_refused_total', help: 'Connections refused at or right after the TLS handshake, by listener and reason.', labelNames: ['listener', 'reason'], registers });
    this.commits = new Histogram({ name: 'liteboot_store_commit_seconds', help: 'Duration of each journal group commit (write and fdatasync).', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers });
    const fleet = () => this.fleetCounts();
    new Gauge({
      name: 'liteboot_certificates_valid',
      help: 'Device certificates unrevoked and unexpired (counted at most every 15 s).',
      registers,
      async collect() {
        this.set((await fleet()).valid);
      },
    });
    new Gauge({
      name: 'liteboot_certificates_expiring',
      help: 'Valid device certificates that expire within the window (counted at most every 15 s).',
      labelNames: ['within'],
      registers,
      async collect() {
        this.set({ within: '30d' }, (await fleet()).expiring);
      },
    });
    new Gauge({
      name: 'liteboot_registrations',
      help: 'Devices by cloud registration state (counted at most every 15 s).',
      labelNames: ['state'],
      registers,
      async collect() {
        const r = (await fleet()).registrations;
        for (const state of ['pending', 'registered', 'failed', 'none']) this.set({ state }, r[state] ?? 0);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** One scan shared by the three gauges and by every scrape within the maximum age. */
  private fleetCounts(): Promise<FleetCounts> {
    const now = this.o.clock().getTime();
    if (!this.fleet || now - this.fleet.at >= (this.o.gaugeMaxAgeMs ?? 15_000)) {
      const counts = this.o.fleet(new Date(now), new Date(now + 30 * DAY_MS));
      this.fleet = { at: now, counts };
      counts.catch(() => {
        if (this.fleet?.counts === counts) this.fleet = undefined;
      });
    }
    return this.fleet.counts;
  }

  issued(via: 'cr' | 'p10cr' | 'kur' | 'est', result: IssueResult): void {
    this.issuedTotal.inc({ via, result });
  }

  revoked(reason: number): void {
    this.revokedTotal.inc({ reason: REASON_NAMES[reason] ?? String(reason) });
  }

  request(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status });
    this.durations.observe({ route }, seconds);
  }

  tlsRefused(listener: string, reason: TlsRefusal): void {
    this.tls.inc({ listener, reason });
  }

  storeCommit(seconds: number): void {
    this.commits.observe(seconds);
  }
}
