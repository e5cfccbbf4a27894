import { decryptCaKey, encryptCaKey } from '../../ca/ca-key.js';
import { BaseCommand } from '../base.js';
import { CaCommand } from '../ca-password.js';

export class CakeyEncryptCommand extends CaCommand {
  static override paths = [['cakey', 'encrypt']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'encrypt the CA key in place',
    details: `
      Rewrites \`CA.key\` (one made by \`setup-ca\` or by the original Go tool) as encrypted PKCS#8
      (\`ENCRYPTED PRIVATE KEY\`, PBES2 with PBKDF2 and AES-256-CBC), after checking it is the key of
      \`CA.crt\`. The new file is written aside (mode 0600), synced, then renamed over the old one.
      The password: the first line of \`--password-file FILE\`, then \`$LITEBOOT_CA_PASSWORD\`, then a
      prompt on a terminal (asked twice). Restart the server with the same password source.
    `,
    examples: [
      ['Encrypt with a password typed at a prompt', '$0 cakey encrypt'],
      ['Encrypt with the password in a file', '$0 cakey encrypt --password-file /run/secrets/ca-password'],
    ],
  });

  protected async run(): Promise<void> {
    const certs = this.certsDir();
    this.print(`encrypted ${await encryptCaKey(certs, () => this.newCaPassword(certs))}`);
  }
}

export class CakeyDecryptCommand extends CaCommand {
  static override paths = [['cakey', 'decrypt']];
  static override usage = BaseCommand.Usage({
    category: 'Set-up',
    description: 'decrypt the CA key in place',
    details: `
      Rewrites an encrypted \`CA.key\` as the plain \`EC PRIVATE KEY\` that \`setup-ca\` writes (mode
      0600; written aside, synced, then renamed over the old one). The password comes from
      \`--password-file FILE\`, then \`$LITEBOOT_CA_PASSWORD\`, then a prompt on a terminal.
    `,
    examples: [['Decrypt with the password in a file', '$0 cakey decrypt --password-file /run/secrets/ca-password']],
  });

  protected async run(): Promise<void> {
    const certs = this.certsDir();
    this.print(`decrypted ${await decryptCaKey(certs, () => this.caPassword(certs))}`);
  }
}
