import type { Role } from '../ca/authority.js';
import * as est from './est.js';
import * as h from './handlers.js';

export interface Route {
  method: 'GET' | 'POST';
  /** Path segments; `:name` matches one segment and is passed to the handler in order. */
  path: string;
  /** Who may call it (API.md "Who may call what"). */
  roles: readonly Role[];
  /**
   * How the body is read: `negotiated` (CBOR/JSON by Content-Type), `upload` (multipart, JSON
   * errors) or `raw` (up to body_limit, decoded by the handler).
   */
  body: 'none' | 'negotiated' | 'upload' | 'raw';
  /**
   * `false`: the handler reads Content-Type itself (EST's application/pkcs10) and the CBOR/JSON
   * negotiation is skipped. Default true.
   */
  negotiate?: boolean;
  /** `text`: errors are a `text/plain` reason (RFC 7030 §4.2.3) instead of the negotiated `{"error":...}`. */
  errors?: 'text';
  handler: h.Handler;
}

const ENROL: Role[] = ['bootstrap', 'operator'];
const READ: Role[] = ['bootstrap', 'device', 'operator'];

/** The whole API, one row per endpoint. */
export const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/', roles: ['bootstrap', 'device', 'operator', 'none'], body: 'none', handler: h.banner },
  { method: 'POST', path: '/api/v1/cr', roles: ENROL, body: 'negotiated', handler: h.enrol },
  { method: 'POST', path: '/api/v1/p10cr', roles: ENROL, body: 'upload', handler: h.uploadEnrol },
  { method: 'GET', path: '/api/v1/cs/:serial', roles: READ, body: 'none', handler: h.certStatus },
  { method: 'GET', path: '/api/v1/ds/:uuid', roles: READ, body: 'none', handler: h.deviceStatus },
  { method: 'GET', path: '/api/v1/cc/:serial', roles: READ, body: 'none', handler: h.certCopy },
  { method: 'GET', path: '/api/v1/ccs', roles: READ, body: 'none', handler: h.cloudSettings },
  // The CRL for devices, DER as on the public listener (whatever the Content-Type).
  { method: 'GET', path: '/api/v1/crl', roles: READ, body: 'none', negotiate: false, handler: h.crl },
  { method: 'POST', path: '/api/v1/kur', roles: ['device'], body: 'negotiated', handler: h.keyUpdate },
  { method: 'POST', path: '/api/v1/krr', roles: ['device', 'operator'], body: 'negotiated', handler: h.revoke },
  // Operator-only additions beyond the original's contract.
  { method: 'POST', path: '/api/v1/registrations', roles: ['operator'], body: 'negotiated', handler: h.registerNow },
  { method: 'POST', path: '/api/v1/allowlist', roles: ['operator'], body: 'negotiated', handler: h.allowlist },
  // EST (RFC 7030 §3.2.2), the same mTLS and rules as cr (bootstrap, operator) and kur (device).
  { method: 'GET', path: '/.well-known/est/cacerts', roles: READ, body: 'none', negotiate: false, errors: 'text', handler: est.cacerts },
  { method: 'POST', path: '/.well-known/est/simpleenroll', roles: ENROL, body: 'raw', negotiate: false, errors: 'text', handler: est.simpleEnroll },
  { method: 'POST', path: '/.well-known/est/simplereenroll', roles: ['device'], body: 'raw', negotiate: false, errors: 'text', handler: est.simpleReenroll },
  { method: 'GET', path: '/.well-known/est/csrattrs', roles: READ, body: 'none', negotiate: false, errors: 'text', handler: est.csrattrs },
];

export interface Match {
  route?: Route;
  params: string[];
  /** Methods the path allows, for a 405's Allow header. */
  allowed: string[];
  /** How errors on this path are written (a 405 too), from its routes. */
  errors?: 'text';
}

const compiled = ROUTES.map((r) => ({ route: r, segments: r.path === '/' ? [] : r.path.slice(1).split('/') }));

// Most requests are to a path without parameters (`/api/v1/cr`): their match is computed once per
// method. Only route paths and the API's methods are kept, so the map stays this small.
const STATIC_PATHS = new Set(ROUTES.filter((r) => !r.path.includes(':')).map((r) => r.path));
const CACHED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const staticMatches = new Map<string, Readonly<Match>>();

export function matchRoute(method: string, path: string): Readonly<Match> {
  if (!STATIC_PATHS.has(path) || !CACHED_METHODS.has(method)) return computeMatch(method, path);
  const k = `${method} ${path}`;
  let m = staticMatches.get(k);
  if (!m) {
    m = computeMatch(method, path);
    Object.freeze(m.params);
    Object.freeze(m.allowed);
    staticMatches.set(k, Object.freeze(m));
  }
  return m;
}

function computeMatch(method: string, path: string): Match {
  const segments = path === '/' ? [] : path.slice(1).split('/');
  const allowed: string[] = [];
  let found: Match | undefined;
  let errors: 'text' | undefined;
  for (const c of compiled) {
    if (c.segments.length !== segments.length) continue;
    const params: string[] = [];
    let ok = true;
    for (let i = 0; i < segments.length && ok; i++) {
      if (c.segments[i]!.startsWith(':')) {
        if (segments[i] === '') ok = false;
        else params.push(segments[i]!);
      } else if (c.segments[i] !== segments[i]) ok = false;
    }
    if (!ok) continue;
    allowed.push(c.route.method);
    errors ??= c.route.errors;
    if (c.route.method === method || (method === 'HEAD' && c.route.method === 'GET')) found ??= { route: c.route, params, allowed };
  }
  return found ? { ...found, allowed, errors } : { params: [], allowed, errors };
}
