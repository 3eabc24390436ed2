/**
 * Provisioning a gateway with a one-time claim (the technician's step at the
 * cabinet):
 *
 * 1. connect to the hub as the claim session (username `claim`, the token as
 *    password, client id `prov-{claimId}`), verifying the hub's TLS
 *    certificate when the URL is mqtts://;
 * 2. subscribe to `ioc/v1/provision/{claimId}/response`;
 * 3. publish the request (gateway id, versions, location) on `…/request`;
 * 4. receive the gateway's own credential, or the hub's reason for refusing
 *    (used, expired or revoked claim …, with its error code);
 * 5. store it in the data folder with mode 0600;
 * 6. reconnect with it, as the gateway, to prove it works.
 *
 * Each step is reported through `onStep`, which the CLI prints.
 *
 * A lost answer: the request's transaction id is kept next to the credential
 * file (`….pending.json`, mode 0600) until an answer arrives, and running
 * the command again with the same claim repeats the same request. The hub
 * answers a repeated request of a used claim for an hour with a fresh secret
 * (hub/store/sqlite/identity-store.ts), so the technician does not need a new
 * claim when the network dropped the answer.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { CLAIM_USERNAME, claimClientId, ERRORS, hubUrlList, IocError, isIocError, parseClaimToken, parseJson, topics, validateProvisionResponse, type ErrorCode, type ProvisionRequest } from '../../contract/index.js';
import { credentialPath, saveCredential, type GatewayCredential } from './credential.js';
import { hubTlsOptions } from './hub-tls.js';
import { subscribeEach } from '../uplink/mqtt-subscribe.js';
import { detectFirmware, hostName } from '../system-info.js';
import { VERSION } from '../version.js';

/** One step of provisioning, as shown to the technician. */
export interface ProvisionStep {
  step: 'claim' | 'connect' | 'subscribe' | 'request' | 'registered' | 'saved' | 'verify' | 'done';
  message: string;
}

/** Options of {@link provisionGateway}. */
export interface ProvisionOptions {
  /** `mqtt://host:port` (loopback/test) or `mqtts://host:port`. */
  hubUrl: string;
  /** The claim token as typed. */
  claim: string;
  gatewayId: string;
  /** Where the credential goes (`hub-credential.json` inside it, unless `credentialFile`). */
  dataDir: string;
  credentialFile?: string;
  /** PEM file of the CA that signed the hub's certificate. */
  caFile?: string;
  location?: string;
  firmware?: string;
  /** Per network step (connect, answer), default 15 s. */
  timeoutMs?: number;
  /** Reconnect with the new credential to prove it (default true). */
  verify?: boolean;
  onStep?: (s: ProvisionStep) => void;
}

function connect(url: string, opts: IClientOptions, timeoutMs: number, what: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { ...opts, reconnectPeriod: 0, connectTimeout: timeoutMs, clean: true });
    const fail = (err: Error): void => {
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end(true);
      const rc = (err as { code?: unknown }).code;
      if (rc === 4 || rc === 5 || rc === 2) {
        reject(new IocError('GW_ERR_AUTH', `the hub refused ${what} (CONNACK ${rc}: ${err.message}); check the ${what === 'the claim' ? 'token, ask the operator whether it is still valid' : 'credential or whether the gateway was revoked'}`, { cause: err }));
      } else {
        reject(new IocError('GW_ERR_PROVISION', `cannot reach the hub at ${url}: ${err.message}`, { cause: err }));
      }
    };
    client.once('connect', () => {
      client.removeListener('error', fail);
      client.removeListener('close', onClose);
      resolve(client);
    });
    const onClose = (): void => fail(new Error('connection closed before CONNACK'));
    client.once('error', fail);
    client.once('close', onClose);
  });
}

/** A hub error code as an IocError, keeping the hub's code when the catalogue knows it. */
function hubError(code: string, message: string): IocError {
  const known = Object.hasOwn(ERRORS, code) ? (code as ErrorCode) : 'GW_ERR_PROVISION';
  return new IocError(known, `the hub refused the registration: ${message.replace(/ \([A-Z_]+\)$/, '')}`);
}

/** Runs the whole flow; resolves with the stored credential and its file. */
export async function provisionGateway(o: ProvisionOptions): Promise<{ credential: GatewayCredential; file: string }> {
  // With several hub addresses (hub.url, issue 16.4) the claim is redeemed at the first that answers: a node that is
  // down or unreachable is skipped (as the uplink does); a refusal by a hub (a bad or used claim) is final, every node
  // checks the claim against the same store.
  const urls = hubUrlList(o.hubUrl);
  if (urls.length === 0) urls.push(o.hubUrl);
  const step = (s: ProvisionStep['step'], message: string): void => o.onStep?.({ step: s, message });
  const timeoutMs = o.timeoutMs ?? 15_000;
  const parsed = parseClaimToken(o.claim);
  if (!parsed) throw new IocError('GW_ERR_PROVISION', "that is not a claim token: expected 10 characters, a dot and 26 characters (letters a–z, digits 2–7), e.g. 'abcde23fgh.abcd…'");
  step('claim', `claim ${parsed.claimId} for gateway ${o.gatewayId}`);
  let client: MqttClient | null = null;
  let tlsOpts: Awaited<ReturnType<typeof hubTlsOptions>> = {};
  for (const [i, url] of urls.entries()) {
    tlsOpts = await hubTlsOptions(url, o.caFile);
    const secure = /^(mqtts|ssl):/.test(url);
    step('connect', `connecting to ${url} with the claim${secure ? ' (TLS, verifying the hub certificate)' : ' (plain TCP: local use only)'}`);
    try {
      client = await connect(url, { ...tlsOpts, clientId: claimClientId(parsed.claimId), username: CLAIM_USERNAME, password: o.claim.trim() }, timeoutMs, 'the claim');
      o = { ...o, hubUrl: url };
      break;
    } catch (err) {
      if (isIocError(err, 'GW_ERR_AUTH') || i === urls.length - 1) throw err;
      step('connect', `${(err as Error).message.replace(/ \(GW_ERR_[A-Z_]+\)$/, '')}; trying the next hub address, ${urls[i + 1]}`);
    }
  }
  if (!client) throw new IocError('GW_ERR_PROVISION', 'no hub address to connect to');
  let credential: GatewayCredential;
  try {
    const responseTopic = topics.provisionResponse(parsed.claimId);
    step('subscribe', `connected; waiting for answers on ${responseTopic}`);
    await subscribeEach(client, [responseTopic]);
    const pendingFile = `${credentialPath(o.dataDir, o.credentialFile)}.pending.json`;
    const earlier = await readPending(pendingFile);
    const repeat = earlier?.claimId === parsed.claimId && earlier.gatewayId === o.gatewayId;
    const transaction = repeat ? earlier.transaction : randomBytes(8).toString('hex');
    if (!repeat) await writePending(pendingFile, { claimId: parsed.claimId, gatewayId: o.gatewayId, transaction });
    const request: ProvisionRequest = {
      v: 1, transaction, gatewayId: o.gatewayId, version: VERSION, firmware: (o.firmware ?? detectFirmware()).slice(0, 128), hostname: hostName(),
      ...(o.location !== undefined ? { location: o.location } : {}),
    };
    step('request', repeat ? `asking the hub again to register ${o.gatewayId} (same request ${transaction}: its answer did not arrive last time)` : `asking the hub to register ${o.gatewayId}`);
    const answer = await new Promise<ReturnType<typeof validateProvisionResponse>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new IocError('GW_ERR_PROVISION', `the hub did not answer within ${Math.round(timeoutMs / 1000)} s; run the same command again within the hour: it repeats the same request, which the hub answers even if it already used the claim`)), timeoutMs);
      client.on('message', (topic, payload) => {
        if (topic !== responseTopic) return;
        try {
          const res = validateProvisionResponse(parseJson(payload));
          if (res.transaction !== transaction && res.transaction !== 'unknown') return;
          clearTimeout(timer);
          resolve(res);
        } catch (err) {
          clearTimeout(timer);
          reject(new IocError('GW_ERR_PROVISION', `the hub's answer is malformed: ${(err as Error).message}`, { cause: err }));
        }
      });
      client.publish(topics.provisionRequest(parsed.claimId), JSON.stringify(request), { qos: 1 }, (err) => {
        if (err) {
          clearTimeout(timer);
          reject(new IocError('GW_ERR_PROVISION', `the request was not accepted: ${err.message}`, { cause: err }));
        }
      });
    });
    // An answer arrived: a later run starts a new request.
    await rm(pendingFile, { force: true });
    if (answer.status === 'error') throw hubError(answer.error.code, answer.error.message);
    const d = answer.data;
    if (d.gatewayId !== o.gatewayId) throw new IocError('GW_ERR_PROVISION', `the hub registered '${d.gatewayId}', not '${o.gatewayId}'`);
    step('registered', `registered as ${d.gatewayId} at site ${d.site}`);
    credential = { v: 1, gatewayId: d.gatewayId, site: d.site, username: d.username, password: d.password, hub: o.hubUrl, issuedAt: d.issuedAt, ...(d.firmwareKeys ? { firmwareKeys: d.firmwareKeys } : {}) };
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }

  const file = credentialPath(o.dataDir, o.credentialFile);
  await saveCredential(file, credential);
  step('saved', `credential saved to ${file} (mode 0600)`);

  if (o.verify !== false) {
    step('verify', `reconnecting as ${credential.gatewayId} with the new credential`);
    try {
      const c = await connect(o.hubUrl, { ...tlsOpts, clientId: credential.gatewayId, username: credential.username, password: credential.password }, timeoutMs, 'the new credential');
      await c.endAsync(true);
    } catch (err) {
      throw isIocError(err) ? err : new IocError('GW_ERR_PROVISION', String(err), { cause: err });
    }
  }
  step('done', `gateway ${credential.gatewayId} is provisioned`);
  return { credential, file };
}

interface PendingRequest {
  claimId: string;
  gatewayId: string;
  transaction: string;
}

async function readPending(file: string): Promise<PendingRequest | null> {
  try {
    const p = JSON.parse(await readFile(file, 'utf8')) as Partial<PendingRequest>;
    return typeof p.claimId === 'string' && typeof p.gatewayId === 'string' && typeof p.transaction === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(p.transaction) ? (p as PendingRequest) : null;
  } catch {
    return null;
  }
}

async function writePending(file: string, p: PendingRequest): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(file, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(p)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
