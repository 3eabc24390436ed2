/**
 * The gateway's own hub credential, as provisioning left it: a JSON file in
 * the data folder, mode 0600 (owner read/write only), written atomically
 * (temporary file created with 0600, fsync, rename), so a power cut never
 * leaves half a secret and no other local user can read it.
 */
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { IocError } from '../../contract/index.js';

/** File name of the credential inside the gateway's data folder. */
export const CREDENTIAL_FILE = 'hub-credential.json';

/** What the file holds. */
export interface GatewayCredential {
  v: 1;
  gatewayId: string;
  site: string;
  username: string;
  password: string;
  /** The hub URL it was issued by. */
  hub: string;
  issuedAt: number;
  /** Firmware signing keys the hub handed over at provisioning (issue 7). */
  firmwareKeys?: string[];
}

/** Default location of the credential for a data folder. */
export function credentialPath(dataDir: string, file?: string): string {
  return file ? path.resolve(dataDir, file) : path.join(dataDir, CREDENTIAL_FILE);
}

/** Writes the credential with mode 0600, atomically. */
export async function saveCredential(file: string, cred: GatewayCredential): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(cred, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600); // in case the umask or an existing file widened it
  await rename(tmp, file);
}

/**
 * Reads the credential. A file readable by group or others is tightened to
 * 0600 and reported in `tightened` (the caller logs it). Throws
 * GW_ERR_CREDENTIAL when it is missing, unreadable or not a credential.
 */
export async function loadCredential(file: string): Promise<{ credential: GatewayCredential; tightened: boolean }> {
  let text: string;
  let tightened = false;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) {
      await chmod(file, 0o600);
      tightened = true;
    }
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new IocError('GW_ERR_CREDENTIAL', `cannot read the hub credential ${file}: ${(err as Error).message}; provision the gateway with 'ioc-edge provision --hub URL --claim TOKEN'`, { cause: err, context: { file } });
  }
  let doc: Partial<GatewayCredential>;
  try {
    doc = JSON.parse(text) as Partial<GatewayCredential>;
  } catch (err) {
    throw new IocError('GW_ERR_CREDENTIAL', `hub credential ${file} is not valid JSON: ${(err as Error).message}`, { cause: err, context: { file } });
  }
  for (const k of ['gatewayId', 'username', 'password', 'hub'] as const) {
    if (typeof doc[k] !== 'string' || doc[k] === '') throw new IocError('GW_ERR_CREDENTIAL', `hub credential ${file} has no '${k}'`, { context: { file, pointer: `/${k}` } });
  }
  return { credential: doc as GatewayCredential, tightened };
}

/** True when a credential file exists (readable or not). */
export async function credentialExists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
