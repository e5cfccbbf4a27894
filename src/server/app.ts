import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import { createServer as createNetServer } from 'node:net';
import { basename } from 'node:path';
import { OID } from '../asn1/oids.js';
import { Authority } from '../ca/authority.js';
import { certificateSignedBy } from '../asn1/certificate.js';
import { keyIdentifier } from '../asn1/extensions.js';
import { keysMatch } from '../asn1/keys.js';
import { keySigner, type Signer } from '../asn1/signer.js';
import { CertsDir, FILES, type CaMaterial } from '../ca/certs-dir.js';
import { reservedSubject } from '../ca/policy.js';
import { TimestampSerials } from '../ca/serial-source.js';
import type { ServerConfig } from '../config.js';
import { LitebootError } from '../errors.js';
import type { Logger } from '../log.js';
import { makeProvider } from '../cloud/providers/index.js';
import { Registrar } from '../cloud/registrar.js';
import { openStoreAt } from '../store/open.js';
import type { Store } from '../store/types.js';
import { ApiServer, listenError } from './api-server.js';
import { MtlsListener } from './mtls-listener.js';
import { AuditLog } from '../audit/audit-log.js';
import { OcspResponder } from '../ca/ocsp-responder.js';
import { PublicListener } from './public-listener.js';
import { tlsOptions } from './tls.js';
import { MetricsListener } from './metrics-listener.js';
import { PromMetrics } from './prom-metrics.js';

export interface RunningServer {
  apiPort: number;
  mtlsPort: number;
  /** The public CRL/OCSP listener's port; 0 when it is off. */
  httpPort: number;
  /** The metrics listener's address (`host:port`, `[v6]:port`); undefined when it is off. */
  metricsAddress?: string;
  store: Store;
  authority: Authority;
  /** Stop accepting, finish what is in flight, close the store cleanly. */
  stop(): Promise<void>;
}

export interface StartOptions {
  config: ServerConfig;
  log: Logger;
  version: string;
  clock?: () => Date;
  /** The password of an encrypted CA.key. */
  caPassphrase?: string;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new LitebootError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'FILE_MISSING' : 'FILE_UNREADABLE', `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** The delegated OCSP responder (`ocsp_signer = "delegated"`): OCSP.crt/OCSP.key, checked to be the CA's and current. */
function loadOcspDelegate(certs: CertsDir, ca: CaMaterial, now: Date): { signer: Signer; keyId: Uint8Array; certDer: Uint8Array } {
  const hint = 'run `liteboot setup-ocsp` (or set ocsp_signer = "ca")';
  const cert = certs.loadCertificate(FILES.ocspCert, 'the OCSP responder certificate', hint).cert;
  const key = certs.loadPrivateKey(FILES.ocspKey, 'the OCSP responder key', hint);
  if (!keysMatch(key, cert.publicKey)) throw new LitebootError('KEY_MISMATCH', `${certs.path(FILES.ocspKey)} is not the key of ${certs.path(FILES.ocspCert)}`);
  if (!certificateSignedBy(cert.der, ca.cert.cert.publicKey)) throw new LitebootError('BAD_CERT', `${certs.path(FILES.ocspCert)} is not signed by this CA; ${hint}`);
  if (!cert.extensions.some((e) => e.oid === OID.extKeyUsage && /OCSPSigning|1\.3\.6\.1\.5\.5\.7\.3\.9/.test(e.value))) {
    throw new LitebootError('BAD_CERT', `${certs.path(FILES.ocspCert)} is not an OCSP responder certificate (no OCSPSigning usage); ${hint}`);
  }
  if (cert.notAfter.getTime() <= now.getTime()) throw new LitebootError('BAD_CERT', `the OCSP responder certificate expired on ${cert.notAfter.toISOString()}; remove certs/OCSP.* and ${hint}`);
  return { signer: keySigner(key), keyId: keyIdentifier(cert.spki), certDer: cert.der };
}

function assertPortFree(port: number, host: string, what: string): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, port, what)));
    probe.listen({ port, host: host || undefined, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/**
 * Why the server cannot issue now, or undefined: the store must answer a read and take writes
 * (its journal has not failed), and the CA key must be loaded.
 */
async function notReady(store: Store, caKeyLoaded: boolean): Promise<string | undefined> {
  if (!caKeyLoaded) return 'the CA key is not loaded';
  const failed = store.writeFailure();
  if (failed) return `the database cannot be written: ${failed.message}`;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([store.getSetting('schemaVersion'), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000)))]);
  } catch (e) {
    return `the database does not answer: ${(e as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
  return undefined;
}

/** Binds the metrics listener; the default address in use turns metrics off with a warning (a second server on one host). */
async function listenMetrics(ml: MetricsListener, at: { host: string; port: number; explicit: boolean }, log: Logger): Promise<string | undefined> {
  try {
    const port = await ml.listen(at.port, at.host);
    return at.host.includes(':') ? `[${at.host}]:${port}` : `${at.host}:${port}`;
  } catch (e) {
    if (at.explicit) throw e;
    log.warn(`metrics are off: ${(e as Error).message} (set metrics_listen to another address, or "" to silence this)`);
    return undefined;
  }
}

/** Wires the store, the authority and both listeners together, and starts them. */
export async function startServer(o: StartOptions): Promise<RunningServer> {
  const { config, log } = o;
  const clock = o.clock ?? (() => new Date());
  const certs = new CertsDir(config.certsDir);
  certs.checkPermissions();
  const ca = certs.loadCa(o.caPassphrase);
  const server = certs.loadCertificate(FILES.serverCert, 'the server certificate', 'run `liteboot setup-ca` first');
  const serverKey = readText(certs.path(FILES.serverKey), 'the server key');
  certs.loadPrivateKey(FILES.serverKey, 'the server key', 'run `liteboot setup-ca` first'); // parses, or says why not
  const san = server.cert.extensions.find((e) => e.oid === OID.subjectAltName)?.value ?? '';
  if (!san.split(', ').some((n) => n === `DNS:${config.hostname}` || n === `IP:${config.hostname}`)) {
    log.warn(`the server certificate (${san || 'no SAN'}) does not name the hostname "${config.hostname}"; devices checking it will refuse to connect`);
  }

  // Names no device may take, whatever require_uuid says (policy.ts). Operators created while
  // the server runs are not here, but their OU is refused anyway.
  const reservedSubjects = [
    reservedSubject("the CA certificate's", ca.cert.cert.subject),
    reservedSubject("the server certificate's", server.cert.subject),
    ...certs.credentialCertificates().map((c) => reservedSubject(basename(c.path).startsWith('BOOTSTRAP') ? "a bootstrap credential's" : "an operator credential's", c.cert.subject)),
  ];

  const provider = makeProvider(config.cloud); // a bad connection string is refused before anything changes
  // A port in use should change nothing: find out before the database is created or migrated.
  await assertPortFree(config.port, config.listen, 'REST API');
  await assertPortFree(config.mport, config.listen, 'mTLS listener');
  if (config.httpPort !== 0) await assertPortFree(config.httpPort, config.listen, 'public listener');
  // Made before the store so that its journal commits are timed from the first one.
  let fleetStore: Store | undefined;
  const metrics = config.metricsListen ? new PromMetrics({ clock, fleet: (at, before) => fleetStore!.fleetCounts(at, before) }) : undefined;
  // A path is CADB.db (sql.js, this process alone); a postgres:// URL is shared with other servers.
  const store = await openStoreAt(config.db, { compactBytes: config.compactBytes, log: (m) => log.info(`store: ${m}`), onCommit: metrics && ((s) => metrics.storeCommit(s)) });
  fleetStore = store;
  let audit: AuditLog | undefined;
  let authorityRef: Authority | undefined;
  try {
    audit = config.auditLog ? AuditLog.open(config.auditLog, { clock, log: (m) => log.warn(m) }) : undefined;
    const authority = new Authority({
      store,
      issuer: ca.issuer,
      policy: { requireUuid: config.requireUuid, reservedSubjects },
      deviceDays: config.deviceDays,
      registration: provider ? 'pending' : 'none',
      serials: new TimestampSerials(await store.maxSerial()),
      clock,
      enrolment: { mode: config.enrolment, allowRebind: config.allowRebind },
      crlDays: config.crlDays,
      publicUrl: config.publicUrl || undefined,
      warn: (m) => log.warn(m),
      audit,
      metrics,
    });
    authorityRef = authority;
    const registrar = new Registrar({ store, provider, cfg: config.cloud, log, audit });
    authority.onIssued(() => registrar.notifyIssued());
    if (config.crlFile) {
      const file = config.crlFile;
      authority.crls.onPublished((crl) => {
        try {
          writeFileAtomic(file, crl.pem);
        } catch (e) {
          log.error(`cannot write crl_file ${file}: ${(e as Error).message}`);
        }
      });
    }
    await authority.loadRevocations();
    authority.follow(); // other servers' revocations on the same store, until stop()
    if (audit) {
      const recovered = await authority.recoverAudit(audit);
      if (recovered > 0) log.warn(`audit: wrote the lines of ${recovered} certificate(s) recorded just before a crash (marked recovered; they may have been delivered)`);
    }
    for (const c of certs.credentials(ca)) {
      if (await authority.recordCredential(c.kind, c.name, c.serial, c.der)) log.info(`recorded the ${c.kind} credential ${c.file} (serial ${c.serial}) so that it can be revoked`);
    }
    if (config.allowRebind) log.warn('allow_rebind is on: anyone holding the bootstrap key can take over an enrolled device id');
    const tls = tlsOptions(serverKey, server.pem, ca.cert.pem);
    const api = new ApiServer({
      tls,
      authority,
      log,
      limits: config.limits,
      metrics,
      deps: {
        authority,
        hubname: config.hubname,
        mqttport: config.mqttport,
        uploadBytes: config.limits.uploadBytes,
        registrar,
        caDer: ca.cert.cert.der,
        banner: `liteboot ${o.version}: certificate authority and bootstrap server for ${config.hostname}\n`,
      },
    });
    const mtls = new MtlsListener(tls, authority, log, config.limits, metrics);
    const ml = metrics && new MetricsListener({ metrics, log, notReady: () => notReady(store, ca.issuer !== undefined) });
    const ocsp = new OcspResponder({
      issuer: ca.issuer,
      status: (serial) => authority.serialStatus(serial),
      clock,
      nextUpdate: () => authority.crls.latest?.nextUpdate,
      delegate: config.ocspSigner === 'delegated' ? loadOcspDelegate(certs, ca, clock()) : undefined,
    });
    const pub = config.httpPort !== 0 ? new PublicListener({ authority, ocsp, caDer: ca.cert.cert.der, log, limits: config.limits }) : undefined;
    const apiPort = await api.listen(config.port, config.listen);
    let mtlsPort: number;
    let httpPort = 0;
    let metricsAddress: string | undefined;
    try {
      mtlsPort = await mtls.listen(config.mport, config.listen);
      if (pub) httpPort = await pub.listen(config.httpPort, config.listen);
      if (ml) metricsAddress = await listenMetrics(ml, config.metricsListen!, log);
    } catch (e) {
      await Promise.all([api.stop(0), mtls.stop(), pub?.stop()]);
      throw e;
    }
    registrar.start();
    let stopping: Promise<void> | undefined;
    return {
      apiPort,
      mtlsPort,
      httpPort,
      metricsAddress,
      store,
      authority,
      stop: () =>
        (stopping ??= (async () => {
          await Promise.all([api.stop(10_000), mtls.stop(), pub?.stop(), ml?.stop()]);
          authority.stop();
          await registrar.stop();
          await audit?.close();
          await store.close();
        })()),
    };
  } catch (e) {
    authorityRef?.stop();
    await audit?.close();
    await store.close();
    throw e;
  }
}
