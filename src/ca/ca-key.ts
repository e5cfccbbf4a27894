import { encryptedPrivateKeyToPem, privateKeyToPem } from '../asn1/keys.js';
import { LitebootError } from '../errors.js';
import { type CertsDir, FILES } from './certs-dir.js';

/**
 * Encrypts CA.key in place (PKCS#8, PBES2/AES-256-CBC), a Go-made `EC PRIVATE KEY` too. The key
 * is checked against CA.crt before `password` is asked for; the old file is replaced whole or not at all.
 */
export async function encryptCaKey(certs: CertsDir, password: () => Promise<string>): Promise<string> {
  if (certs.caKeyEncrypted()) throw new LitebootError('USAGE', `the CA key ${certs.path(FILES.caKey)} is already encrypted`);
  const ca = certs.loadCa();
  return certs.replace(FILES.caKey, encryptedPrivateKeyToPem(ca.key, await password()), 0o600);
}

/** Decrypts CA.key in place, back to the plain SEC1 `EC PRIVATE KEY` that setup-ca writes. */
export async function decryptCaKey(certs: CertsDir, password: () => Promise<string | undefined>): Promise<string> {
  if (!certs.caKeyEncrypted()) throw new LitebootError('USAGE', `the CA key ${certs.path(FILES.caKey)} is not encrypted`);
  const ca = certs.loadCa(await password());
  return certs.replace(FILES.caKey, privateKeyToPem(ca.key), 0o600);
}
