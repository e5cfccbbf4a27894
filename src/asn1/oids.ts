/** Object identifiers liteboot names, with the short names openssl prints for them. */
export const OID = {
  // RFC 5280 §4.1.2.4 attribute types
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  countryName: '2.5.4.6',
  localityName: '2.5.4.7',
  stateOrProvinceName: '2.5.4.8',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  emailAddress: '1.2.840.113549.1.9.1',
  // RFC 2985 §5.4.2 extensionRequest attribute of a CSR
  extensionRequest: '1.2.840.113549.1.9.14',
  // key algorithms (RFC 5480, RFC 8410, RFC 8017)
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
  ed25519: '1.3.101.112',
  rsaEncryption: '1.2.840.113549.1.1.1',
  // signature algorithms (RFC 5758 §3.2, RFC 8410 §3, RFC 4055)
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ecdsaWithSHA512: '1.2.840.10045.4.3.4',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  // extensions (RFC 5280 §4.2.1)
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  // extended key usages (RFC 5280 §4.2.1.12)
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  // hash algorithms in an OCSP CertID (RFC 6960 §4.1.1; RFC 3279 §2.2.1, RFC 5754 §2)
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  // OCSP (RFC 6960 §4.2.1, §4.4.1, §4.2.2.2.1)
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

/** Short names for distinguished-name attributes, as RFC 4514 and openssl write them. */
export const ATTRIBUTE_SHORT_NAMES: Readonly<Record<string, string>> = {
  [OID.commonName]: 'CN',
  [OID.serialNumber]: 'serialNumber',
  [OID.countryName]: 'C',
  [OID.localityName]: 'L',
  [OID.stateOrProvinceName]: 'ST',
  [OID.organizationName]: 'O',
  [OID.organizationalUnitName]: 'OU',
  [OID.emailAddress]: 'emailAddress',
};

export const EXTENSION_NAMES: Readonly<Record<string, string>> = {
  [OID.subjectKeyIdentifier]: 'subjectKeyIdentifier',
  [OID.keyUsage]: 'keyUsage',
  [OID.subjectAltName]: 'subjectAltName',
  [OID.basicConstraints]: 'basicConstraints',
  [OID.cRLDistributionPoints]: 'cRLDistributionPoints',
  [OID.authorityKeyIdentifier]: 'authorityKeyIdentifier',
  [OID.extKeyUsage]: 'extendedKeyUsage',
};

export const EKU_NAMES: Readonly<Record<string, string>> = {
  [OID.serverAuth]: 'serverAuth',
  [OID.clientAuth]: 'clientAuth',
};
