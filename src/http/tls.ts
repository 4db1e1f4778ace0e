import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError, type Config } from '../config.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** A file's bytes, or an error naming the setting (never the file's contents). */
function read(setting: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Whether `opts` make a TLS context: the OpenSSL code of what is wrong, or undefined. */
function problemWith(opts: { cert?: Buffer; key?: Buffer }): string | undefined {
  try {
    createSecureContext(opts);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'invalid';
  }
}

/**
 * The certificate and key Jarvis serves HTTPS and WSS with (JARVIS_TLS_CERT_FILE, JARVIS_TLS_KEY_FILE), read and
 * checked once at start: both or neither, each readable and PEM, the key the certificate's. A problem is a
 * ConfigError that names the setting, so the start stops with one line. They are read only at start: replacing
 * them takes a restart.
 */
export function loadTls(config: Pick<Config, 'tls'>): TlsFiles | undefined {
  const { certFile, keyFile } = config.tls;
  if (certFile === null && keyFile === null) return undefined;
  if (certFile === null || keyFile === null) throw new ConfigError('JARVIS_TLS_CERT_FILE and JARVIS_TLS_KEY_FILE go together: set both, or neither');
  const cert = read('JARVIS_TLS_CERT_FILE', certFile);
  const key = read('JARVIS_TLS_KEY_FILE', keyFile);
  const badCert = problemWith({ cert });
  if (badCert) throw new ConfigError(`JARVIS_TLS_CERT_FILE: ${certFile} is not a PEM certificate (${badCert})`);
  const badKey = problemWith({ key });
  if (badKey) throw new ConfigError(`JARVIS_TLS_KEY_FILE: ${keyFile} is not a PEM private key (${badKey})`);
  const mismatch = problemWith({ cert, key });
  if (mismatch) throw new ConfigError(`JARVIS_TLS_KEY_FILE: ${keyFile} is not the private key of JARVIS_TLS_CERT_FILE's certificate (${mismatch})`);
  return { cert, key };
}
