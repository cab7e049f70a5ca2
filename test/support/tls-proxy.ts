/**
 * A TLS front for the plaintext Temporal dev server, so tests can reach Temporal the way a secured
 * deployment is reached: a throw-away CA, certificates signed by it, and a proxy that terminates
 * TLS (optionally requiring a client certificate) and pipes the bytes to the dev server.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import forge from 'node-forge';

/** A running TLS proxy and the files a client needs to reach it. */
export interface TlsProxy {
  /** `127.0.0.1:port` of the proxy. */
  readonly address: string;
  /** PEM of the CA that signed the proxy's (and the client's) certificate. */
  readonly caFile: string;
  /** PEM of an unrelated CA: trusting it instead must fail the handshake. */
  readonly wrongCaFile: string;
  /** PEM of a client certificate signed by the CA. */
  readonly clientCertFile: string;
  /** PEM of the client certificate's private key. */
  readonly clientKeyFile: string;
  /** Stops the proxy, destroys open sockets and removes the files. */
  close(): Promise<void>;
}

/** Options of {@link startTlsProxy}. */
export interface TlsProxyOptions {
  /** Where to pipe the decrypted bytes (`host:port`); default `TEMPORAL_ADDRESS`. */
  readonly target?: string;
  /** Require and verify a client certificate signed by the CA (mutual TLS). */
  readonly mutual?: boolean;
}

interface Issued {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
  readonly certPem: string;
  readonly keyPem: string;
}

// Node's key generation is native and fast; forge only builds and signs the certificates.
function newKeyPair(): { publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey } {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

// rustls (the worker's native connection) accepts only v3 certificates with the usual extensions:
// a CA marked as one, end-entity certificates with a subjectAltName and the right extKeyUsage.
function issue(commonName: string, extensions: object[], issuer?: Issued): Issued {
  const { publicKey, privateKey } = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: the leading byte's high bit must be clear.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer((issuer?.cert ?? cert).subject.attributes);
  cert.setExtensions([...extensions, { name: 'subjectKeyIdentifier' }]);
  cert.sign(issuer?.key ?? privateKey, forge.md.sha256.create());
  return { cert, key: privateKey, certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(privateKey) };
}

function issueCa(commonName: string): Issued {
  return issue(commonName, [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
}

function issueLeaf(commonName: string, ca: Issued, usage: 'serverAuth' | 'clientAuth'): Issued {
  return issue(
    commonName,
    [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', [usage]: true },
      {
        name: 'subjectAltName',
        altNames: [{ type: 2, value: commonName }, ...(usage === 'serverAuth' ? [{ type: 7, ip: '127.0.0.1' }] : [])],
      },
    ],
    ca,
  );
}

function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port)) throw new Error(`tls proxy target '${address}' is not host:port`);
  return { host: address.slice(0, colon), port };
}

/** Writes fresh certificates to a temp folder and starts a TLS proxy on 127.0.0.1 in front of `target`. */
export async function startTlsProxy(options: TlsProxyOptions = {}): Promise<TlsProxy> {
  const target = options.target ?? process.env['TEMPORAL_ADDRESS'];
  if (!target) throw new Error('tls proxy has no target: TEMPORAL_ADDRESS is not set (run through jest)');
  const { host, port } = splitHostPort(target);

  const ca = issueCa('tidesync test ca');
  const wrongCa = issueCa('tidesync unrelated ca');
  const server = issueLeaf('localhost', ca, 'serverAuth');
  const client = issueLeaf('tidesync-test-client', ca, 'clientAuth');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'tidesync-tls-'));
  const files = {
    caFile: path.join(dir, 'ca.pem'),
    wrongCaFile: path.join(dir, 'wrong-ca.pem'),
    clientCertFile: path.join(dir, 'client.pem'),
    clientKeyFile: path.join(dir, 'client-key.pem'),
  };
  await Promise.all([
    writeFile(files.caFile, ca.certPem),
    writeFile(files.wrongCaFile, wrongCa.certPem),
    writeFile(files.clientCertFile, client.certPem),
    writeFile(files.clientKeyFile, client.keyPem, { mode: 0o600 }),
  ]);

  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const proxy = tls.createServer({
    key: server.keyPem,
    cert: server.certPem,
    ALPNProtocols: ['h2'],
    ...(options.mutual ? { requestCert: true, rejectUnauthorized: true, ca: ca.certPem } : {}),
  });
  // Raw sockets are tracked too: a handshake that never completes must not keep jest alive.
  proxy.on('connection', track);
  // A failed handshake (wrong CA, no client certificate) is what some tests want; nothing to report.
  proxy.on('tlsClientError', () => undefined);
  proxy.on('secureConnection', (secure) => {
    const upstream = net.connect({ host, port });
    track(upstream);
    secure.pipe(upstream).pipe(secure);
    const teardown = (): void => {
      secure.destroy();
      upstream.destroy();
    };
    secure.on('error', teardown).on('close', teardown);
    upstream.on('error', teardown).on('close', teardown);
  });
  await new Promise<void>((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(0, '127.0.0.1', () => resolve());
  });
  const { port: proxyPort } = proxy.address() as net.AddressInfo;

  return {
    address: `127.0.0.1:${proxyPort}`,
    ...files,
    async close() {
      const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
