import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Option } from 'clipanion';
import { publicKeyToPem, spkiDer } from '../../asn1/keys.js';
import { LitebootError } from '../../errors.js';
import { BaseCommand, fsErrorMessage } from '../base.js';
import { CaCommand } from '../ca-password.js';

export class CakeyGetpubCommand extends CaCommand {
  static override paths = [['cakey', 'getpub']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'print the CA public key',
    details: 'Prints the public key of `CA.key` as PEM (`PUBLIC KEY`, SubjectPublicKeyInfo). With `--der FILE` it also writes the DER form to FILE.',
    examples: [
      ['Print the CA public key', '$0 cakey getpub'],
      ['Also write it as DER', '$0 cakey getpub --der ca-pub.der'],
    ],
  });

  der = Option.String('--der', { description: 'Also write the DER SubjectPublicKeyInfo to this file' });
  json = Option.Boolean('--json', false, { description: 'Print {"publicKey":"<PEM>","sha256":"<hex of the DER>"}' });

  protected async run(): Promise<void> {
    const ca = await this.loadCa();
    if (this.der) {
      try {
        writeFileSync(this.der, spkiDer(ca.key));
      } catch (e) {
        throw new LitebootError('FILE_UNREADABLE', fsErrorMessage(e, this.der, 'write') ?? `cannot write ${this.der}`, { cause: e });
      }
    }
    if (this.json) this.printJson({ publicKey: publicKeyToPem(ca.key), sha256: createHash('sha256').update(spkiDer(ca.key)).digest('hex') });
    else this.context.stdout.write(publicKeyToPem(ca.key));
  }
}
