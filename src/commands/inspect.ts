import { readFileSync } from 'node:fs';
import { Option } from 'clipanion';
import { describeObjects, type Description } from '../asn1/describe.js';
import { LitebootError } from '../errors.js';
import { BaseCommand } from './base.js';

export class InspectCommand extends BaseCommand {
  static override paths = [['inspect']];
  static override usage = BaseCommand.Usage({
    category: 'Tools',
    description: 'describe certificates, CSRs and keys',
    details: `
      Recognises PEM or DER certificates, certificate requests and keys and prints their subject,
      issuer, serial (decimal and hex), validity, key type, extensions and fingerprints. Private
      keys are described by type and public-key fingerprint; their contents are never printed.
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
    const results: { file: string; objects?: Description[]; error?: string }[] = [];
    for (const file of this.files) {
      try {
        results.push({ file, objects: await describeObjects(this.readInput(file)) });
      } catch (e) {
        if (!(e instanceof LitebootError)) throw e;
        results.push({ file, error: e.message });
      }
    }
    if (this.json) this.printJson(results);
    else {
      for (const r of results) {
        if (r.error) this.context.stderr.write(`liteboot: ${r.file}: ${r.error}\n`);
        else for (const d of r.objects!) this.printText(r.file, d);
      }
    }
    return results.some((r) => r.error) ? 1 : 0;
  }

  private readInput(file: string): Buffer {
    try {
      return file === '-' ? readFileSync(0) : readFileSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new LitebootError(code === 'ENOENT' ? 'FILE_MISSING' : 'FILE_UNREADABLE', code === 'ENOENT' ? 'no such file' : (e as Error).message);
    }
  }

  private printText(file: string, d: Description): void {
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
      case 'public-key':
        this.print(`${file}: public key`);
        row('Key', d.key.label);
        row('Public key SHA-256', d.publicKeySha256);
        break;
    }
  }
}
