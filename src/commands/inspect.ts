import { readFileSync } from 'node:fs';
import { Option } from 'clipanion';
import { describeObjects, type Description } from '../asn1/describe.js';
import { LitebootError } from '../errors.js';
import { decodeCborResponse, responseAsJson } from '../protocol/responses.js';
import { BaseCommand, fsReason } from './base.js';

/** A CBOR response body saved from the API, recognised by its structure. */
type CborDescription = { kind: 'cbor-response'; response: string; json: string };

function describeCbor(data: Buffer, original: unknown): CborDescription[] {
  if (data.length > 0 && data[0]! >= 0xa0 && data[0]! <= 0xbf) {
    try {
      const r = decodeCborResponse(data, 'auto');
      return [{ kind: 'cbor-response', response: r.kind, json: responseAsJson(r) }];
    } catch {
      /* not one of ours */
    }
  }
  if (original instanceof LitebootError && original.code === 'UNRECOGNISED_INPUT') {
    throw new LitebootError('UNRECOGNISED_INPUT', 'not a certificate, CSR, key, CRL or CBOR response body');
  }
  throw original;
}

export class InspectCommand extends BaseCommand {
  static override paths = [['inspect']];
  static override usesCertsDir = false;
  static override usage = BaseCommand.Usage({
    category: 'Tools',
    description: 'describe certificates, CSRs, keys, CRLs and CBOR response bodies',
    details: `
      Recognises PEM or DER certificates, certificate requests, keys and CRLs, and CBOR response
      bodies saved from the API, and prints them readably: subject, issuer, serial (decimal and
      hex), validity, key type, extensions and fingerprints; a CRL's revoked serials; a CBOR body as
      the server's JSON. Private keys are described by type and public-key fingerprint; their
      contents are never printed.
      \`-\` reads standard input.
    `,
    examples: [
      ['Describe the CA certificate', '$0 inspect certs/CA.crt'],
      ['Several files, as JSON for a script', '$0 inspect --json certs/SERVER.crt device.csr'],
    ],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });
  files = Option.Rest({ required: 1, name: 'file' });

  protected async run(): Promise<number> {
    const results: { file: string; objects?: (Description | CborDescription)[]; error?: string }[] = [];
    for (const file of this.files) {
      try {
        const data = this.readInput(file);
        results.push({ file, objects: await describeObjects(data).catch((e: unknown) => describeCbor(data, e)) });
      } catch (e) {
        if (!(e instanceof LitebootError)) throw e;
        results.push({ file, error: e.message });
      }
    }
    if (this.json) this.printJson(results);
    else {
      for (const r of results) {
        if (r.error) this.context.stderr.write(`liteboot: ${r.error.startsWith('cannot read ') ? '' : `${r.file}: `}${r.error}\n`);
        else for (const d of r.objects!) this.printText(r.file, d);
      }
    }
    return results.some((r) => r.error) ? 1 : 0;
  }

  private readInput(file: string): Buffer {
    try {
      return file === '-' ? readFileSync(0) : readFileSync(file);
    } catch (e) {
      const why = fsReason(e);
      throw new LitebootError(why === 'not found' ? 'FILE_MISSING' : 'FILE_UNREADABLE', `cannot read ${file === '-' ? 'standard input' : file}: ${why ?? 'not readable'}`, { cause: e });
    }
  }

  private printText(file: string, d: Description | CborDescription): void {
    const row = (k: string, v: string) => this.print(`  ${(k + ':').padEnd(22)}${v}`);
    switch (d.kind) {
      case 'certificate':
        this.print(`${file}: certificate (X.509 v${d.version})`);
        row('Subject', d.subject);
        row('Issuer', d.issuer + (d.selfIssued ? ' (self-issued)' : ''));
        row('Serial', `${d.serial} (0x${d.serialHex})`);
        row('Not before', d.notBefore);
        row('Not after', d.notAfter);
        row('Public key', d.key.label);
        row('Signature', d.signatureAlgorithm);
        if (d.extensions.length > 0) {
          this.print('  Extensions:');
          for (const e of d.extensions) this.print(`    ${e.name}${e.critical ? ' (critical)' : ''}: ${e.value}`);
        }
        row('SHA-256 fingerprint', d.fingerprints.sha256);
        row('SHA-1 fingerprint', d.fingerprints.sha1);
        break;
      case 'csr':
        this.print(`${file}: certificate request (PKCS#10)`);
        row('Subject', d.subject);
        row('Public key', d.key.label);
        row('Signature', `${d.signatureAlgorithm} (${d.signatureValid ? 'valid' : 'INVALID'})`);
        if (d.requestedExtensions.length > 0) row('Requested exts', d.requestedExtensions.join(', '));
        row('SHA-256 fingerprint', d.fingerprints.sha256);
        break;
      case 'private-key':
        this.print(`${file}: private key (${d.format})`);
        row('Key', d.key.label);
        row('Public key SHA-256', d.publicKeySha256);
        break;
      case 'crl':
        this.print(`${file}: certificate revocation list (X.509 v2 CRL)`);
        row('Issuer', d.issuer);
        row('This update', d.thisUpdate);
        row('Next update', d.nextUpdate ?? '(none)');
        row('Signature', d.signatureAlgorithm);
        row('Revoked', `${d.revoked.length} certificate${d.revoked.length === 1 ? '' : 's'}`);
        for (const r of d.revoked.slice(0, 50)) this.print(`    ${r.serial}  ${r.revokedAt}`);
        if (d.revoked.length > 50) this.print(`    ... and ${d.revoked.length - 50} more (--json lists them all)`);
        break;
      case 'cbor-response':
        this.print(`${file}: CBOR ${d.response} response body`);
        row('As the server\'s JSON', d.json);
        break;
      case 'public-key':
        this.print(`${file}: public key`);
        row('Key', d.key.label);
        row('Public key SHA-256', d.publicKeySha256);
        break;
    }
  }
}
