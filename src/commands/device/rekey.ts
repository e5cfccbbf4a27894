import { X509Certificate } from 'node:crypto';
import { readFileSync, renameSync } from 'node:fs';
import { Option } from 'clipanion';
import { buildCsr } from '../../asn1/csr.js';
import { generateKey, privateKeyToPem } from '../../asn1/keys.js';
import { toPem } from '../../asn1/pem.js';
import { canonicalUuid } from '../../ca/uuid.js';
import { verifyIssued } from '../../client/provision.js';
import { usage } from '../base.js';
import { ClientCommand } from '../client-base.js';

export class DeviceRekeyCommand extends ClientCommand {
  static override paths = [['device', 'rekey']];
  static override usage = ClientCommand.Usage({
    category: 'Devices',
    description: 'get a device a new key and certificate (POST /kur)',
    details: `
      Authenticates with the device's own certificate (\`certs/<uuid>.crt\`), sends a CSR for a new
      P-256 key with the same subject, and checks the answer. The old certificate and key are kept
      as \`certs/<uuid>.<old serial>.crt\` and \`.key\` (the old certificate stays valid); the new ones
      become \`certs/<uuid>.crt\` and \`certs/<uuid>.key\`.
    `,
    examples: [['Rekey a device', '$0 device rekey 56d38f73-3f6f-4a59-86bc-d315a1ccc634 --hostname localhost']],
  });

  uuid = Option.String({ name: 'uuid' });

  protected async run(): Promise<number> {
    const uuid = canonicalUuid(this.uuid);
    if (!uuid) throw usage(`"${this.uuid}" is not a UUID`);
    const certs = this.certsDir();
    const current = certs.loadCertificate(`${uuid}.crt`, `the certificate of device ${uuid}`, 'enrol it with `liteboot new-device` first');
    const ca = new X509Certificate(readFileSync(certs.path('CA.crt')));
    const key = generateKey('P-256');
    const csr = await buildCsr(current.cert.subject, key);
    const client = this.client({ kind: 'device', uuid });
    try {
      const der = await client.keyUpdate(csr, this.wireFormat());
      const cert = verifyIssued(der, key, ca, uuid, new Date());
      const old = current.cert.serial.toString();
      // Keep the old pair: it stays valid, and a device that fails to store the new one needs it.
      for (const ext of ['crt', 'key']) renameSync(certs.path(`${uuid}.${ext}`), certs.path(`${uuid}.${old}.${ext}`));
      try {
        certs.writeNew([
          { name: `${uuid}.key`, data: privateKeyToPem(key), mode: 0o600 },
          { name: `${uuid}.crt`, data: toPem('CERTIFICATE', der), mode: 0o644 },
        ]);
      } catch (e) {
        for (const ext of ['crt', 'key']) renameSync(certs.path(`${uuid}.${old}.${ext}`), certs.path(`${uuid}.${ext}`));
        throw e;
      }
      this.print(`rekeyed ${uuid}: new serial ${BigInt('0x' + cert.serialNumber)}; the previous certificate (serial ${old}) is kept as ${certs.path(`${uuid}.${old}.crt`)}`);
      return 0;
    } finally {
      client.close();
    }
  }
}
