/**
 * A stand-in gateway for hub firmware tests: a real mqtt.js client that
 * announces field devices in its status inventory, records the offers,
 * chunks and cancels it gets, and sends state reports and chunk requests.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Test } from 'tap';
import {
  decodeChunkFrame, fwTopics, topics,
  type ChunkFrame, type FirmwareCancel, type FirmwareOffer, type FirmwareState, type FirmwareStateReport, type GatewayStatus,
} from '../../contract/index.js';

/** One fake gateway. */
export class FakeFwGateway {
  readonly offers: FirmwareOffer[] = [];
  readonly cancels: FirmwareCancel[] = [];
  readonly frames: ChunkFrame[] = [];
  client!: MqttClient;
  private readonly seq = new Map<string, number>();

  constructor(readonly id: string, readonly devices: Array<{ id: string; profile: string }>) {}

  /** Connects, subscribes to its fw topics and publishes a status with its inventory. */
  async connect(t: Test, url: string, opts: IClientOptions = {}): Promise<void> {
    this.client = await mqtt.connectAsync(url, { clientId: this.id, reconnectPeriod: 0, ...opts });
    t.teardown(() => this.client.endAsync(true));
    this.client.on('message', (topic, payload) => {
      if (topic === fwTopics.offer(this.id)) this.offers.push(JSON.parse(payload.toString()) as FirmwareOffer);
      else if (topic === fwTopics.cancel(this.id)) this.cancels.push(JSON.parse(payload.toString()) as FirmwareCancel);
      else if (topic === fwTopics.chunk(this.id)) this.frames.push(decodeChunkFrame(payload));
    });
    await this.client.subscribeAsync([fwTopics.offer(this.id), fwTopics.chunk(this.id), fwTopics.cancel(this.id)], { qos: 1 });
    const status: GatewayStatus = { v: 1, state: 'online', ts: Date.now(), inventory: this.devices.map((d) => ({ id: d.id, profile: d.profile, bus: 'lan' })) };
    await this.client.publishAsync(topics.status(this.id), JSON.stringify(status), { qos: 1, retain: true });
  }

  /** Sends a state report for a job (seq counted per job). */
  async report(offer: FirmwareOffer, state: FirmwareState, result = 0, extra: Partial<FirmwareStateReport> = {}): Promise<void> {
    const seq = (this.seq.get(offer.job) ?? 0) + 1;
    this.seq.set(offer.job, seq);
    const rep: FirmwareStateReport = { v: 1, job: offer.job, device: offer.device, seq, ts: Date.now(), state, result, ...extra };
    await this.client.publishAsync(fwTopics.state(this.id), JSON.stringify(rep), { qos: 1 });
  }

  /** Reports the whole happy path of a job. */
  async succeed(offer: FirmwareOffer): Promise<void> {
    for (const s of ['downloading', 'downloaded', 'updating'] as const) await this.report(offer, s);
    await this.report(offer, 'updated', 1, { version: offer.signed.manifest.version });
  }

  async request(job: string, image: string, indices: number[]): Promise<void> {
    await this.client.publishAsync(fwTopics.request(this.id), JSON.stringify({ v: 1, job, image, indices }), { qos: 0 });
  }

  async sync(jobs: Array<{ job: string; state: FirmwareState }>): Promise<void> {
    await this.client.publishAsync(fwTopics.sync(this.id), JSON.stringify({ v: 1, jobs }), { qos: 1 });
  }
}
