import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import selfsigned from 'selfsigned';

export interface TestCertificate {
  /** PEM files to give Jarvis (JARVIS_TLS_CERT_FILE, JARVIS_TLS_KEY_FILE). */
  certFile: string;
  keyFile: string;
  /** The certificate, for a client to trust (an agent's `ca`, NODE_EXTRA_CA_CERTS). */
  cert: string;
  remove(): Promise<void>;
}

/** A self-signed certificate for localhost and 127.0.0.1, made for the test, in a temporary directory. */
export async function makeCertificate(): Promise<TestCertificate> {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    notAfterDate: new Date(Date.now() + 2 * 86_400_000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
  });
  const dir = await mkdtemp(join(tmpdir(), 'jarvis-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await Promise.all([writeFile(certFile, pems.cert), writeFile(keyFile, pems.private)]);
  return { certFile, keyFile, cert: pems.cert, remove: () => rm(dir, { recursive: true, force: true }) };
}
