/**
 * An OPC UA server exposing the health of one or more cameras (namespace
 * urn:ioc-edge:camera, node ids `s=Camera.…` as in the shipped
 * camera-health-opcua profile; further cameras as `s=Camera2.…`).
 *
 * - every variable has a `minimumSamplingInterval` (without one a variable
 *   with a getter is sampled at 1 s at most);
 * - `hostname: '127.0.0.1'`, so endpoint URLs do not carry the machine name;
 * - its PKI lives in `pkiDir` (tests: a temporary folder, never $HOME);
 * - `stop()` / `start()` again on the same port is a server restart;
 * - `silent(true)` freezes the values (no data changes, still connected);
 * - optional username/password and security modes for the security tests.
 *
 * node-opcua is loaded lazily (about a second), like the gateway does.
 */
import path from 'node:path';

type NodeOpcua = typeof import('node-opcua');

/** Options of {@link OpcuaCameraServer}. */
export interface OpcuaCameraServerOptions {
  /** Fixed port; 0 or absent picks a free one on the first start and keeps it for restarts. */
  port?: number;
  /** Where the server keeps its certificate store. */
  pkiDir: string;
  /** Number of cameras: Camera, Camera2, Camera3… */
  cameras?: number;
  /** Require this user (anonymous refused) when set. */
  user?: { username: string; password: string };
  /** Offer only secured endpoints (Sign, SignAndEncrypt with Basic256Sha256). */
  secureOnly?: boolean;
  /** Value change period (ms). Default 100. */
  tickMs?: number;
}

/** State of one simulated camera. */
export interface CameraState {
  online: boolean;
  fps: number;
  bitrate: number;
  recording: boolean;
  tamper: boolean;
  temperature: number;
  heater: boolean;
  storage: number;
  uptime: number;
  lastError: string;
}

/** A camera-health OPC UA server. */
export class OpcuaCameraServer {
  private opcua: NodeOpcua | null = null;
  private server: InstanceType<NodeOpcua['OPCUAServer']> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private frozen = false;
  private readonly t0 = Date.now();
  readonly cameras: CameraState[];
  port = 0;
  /** Writes the server accepted (node id → value). */
  readonly writes: { nodeId: string; value: unknown }[] = [];

  constructor(private readonly opts: OpcuaCameraServerOptions) {
    this.cameras = Array.from({ length: opts.cameras ?? 1 }, () => ({
      online: true, fps: 25, bitrate: 4000, recording: true, tamper: false, temperature: 31.5, heater: false, storage: 42, uptime: 0, lastError: '',
    }));
  }

  /** `opc.tcp://127.0.0.1:<port>/UA/Camera` */
  get endpointUrl(): string {
    return `opc.tcp://127.0.0.1:${this.port}/UA/Camera`;
  }

  /** PEM file of the server's certificate (for a client's trust list). */
  get certificateFile(): string {
    return path.join(this.opts.pkiDir, 'own', 'certs', 'certificate.pem');
  }

  async start(): Promise<void> {
    const o = (this.opcua ??= await import('node-opcua'));
    if (!this.port) this.port = this.opts.port || (await (await import('./free-port.js')).freePort());
    const certificateManager = new o.OPCUACertificateManager({ rootFolder: this.opts.pkiDir, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true } as ConstructorParameters<typeof o.OPCUACertificateManager>[0]);
    const user = this.opts.user;
    const server = new o.OPCUAServer({
      port: this.port,
      hostname: '127.0.0.1',
      resourcePath: '/UA/Camera',
      serverCertificateManager: certificateManager,
      certificateFile: this.certificateFile,
      privateKeyFile: path.join(this.opts.pkiDir, 'own', 'private', 'private_key.pem'),
      buildInfo: { productName: 'ioc-edge camera simulator', manufacturerName: 'ioc-edge' },
      securityModes: this.opts.secureOnly ? [o.MessageSecurityMode.Sign, o.MessageSecurityMode.SignAndEncrypt] : [o.MessageSecurityMode.None, o.MessageSecurityMode.Sign, o.MessageSecurityMode.SignAndEncrypt],
      securityPolicies: this.opts.secureOnly ? [o.SecurityPolicy.Basic256Sha256] : [o.SecurityPolicy.None, o.SecurityPolicy.Basic256Sha256],
      allowAnonymous: !user,
      ...(user ? { userManager: { isValidUser: (name: string, password: string) => name === user.username && password === user.password } } : {}),
      disableDiscovery: true,
    });
    await server.initialize();
    this.build(o, server);
    await server.start();
    this.server = server;
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 100);
    this.timer.unref();
  }

  private build(o: NodeOpcua, server: InstanceType<NodeOpcua['OPCUAServer']>): void {
    const addressSpace = server.engine.addressSpace;
    if (!addressSpace) throw new Error('OPC UA server has no address space');
    const ns = addressSpace.registerNamespace('urn:ioc-edge:camera');
    this.cameras.forEach((cam, i) => {
      const prefix = i === 0 ? 'Camera' : `Camera${i + 1}`;
      const folder = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: prefix, nodeId: `s=${prefix}` });
      const variable = (id: string, browseName: string, dataType: 'Boolean' | 'Double' | 'UInt32' | 'String', get: () => unknown, set?: (v: unknown) => void): void => {
        const type = o.DataType[dataType];
        ns.addVariable({
          componentOf: folder,
          nodeId: `s=${prefix}.${id}`,
          browseName,
          dataType,
          minimumSamplingInterval: 50,
          ...(set ? { accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite' } : {}),
          value: {
            get: () => new o.Variant({ dataType: type, value: get() }),
            ...(set ? { set: (v: InstanceType<NodeOpcua['Variant']>) => {
              set(v.value);
              this.writes.push({ nodeId: `s=${prefix}.${id}`, value: v.value });
              return o.StatusCodes.Good;
            } } : {}),
          },
        });
      };
      variable('Online', 'Online', 'Boolean', () => cam.online);
      variable('Stream.FrameRate', 'FrameRate', 'Double', () => cam.fps);
      variable('Stream.Bitrate', 'Bitrate', 'Double', () => cam.bitrate);
      variable('Recording', 'Recording', 'Boolean', () => cam.recording);
      variable('TamperAlarm', 'TamperAlarm', 'Boolean', () => cam.tamper);
      variable('Housing.Temperature', 'HousingTemperature', 'Double', () => cam.temperature);
      variable('Housing.Heater', 'Heater', 'Boolean', () => cam.heater, (v) => (cam.heater = v === true));
      variable('Storage.UsedPercent', 'StorageUsedPercent', 'Double', () => cam.storage);
      variable('Uptime', 'Uptime', 'UInt32', () => cam.uptime);
      variable('LastError', 'LastError', 'String', () => cam.lastError);
    });
  }

  /** Advances the values (unless frozen). */
  tick(): void {
    if (this.frozen) return;
    const t = Date.now() - this.t0;
    for (const cam of this.cameras) {
      cam.fps = cam.online ? Math.round((25 - Math.abs(2 * Math.sin(t / 3000))) * 10) / 10 : 0;
      cam.bitrate = cam.online ? Math.round(4000 + 800 * Math.sin(t / 2000)) : 0;
      cam.temperature = Math.round((31.5 + 3 * Math.sin(t / 20_000)) * 10) / 10;
      cam.uptime = Math.floor(t / 1000);
    }
  }

  /** Freeze (true) or resume value changes. */
  silent(on: boolean): void {
    this.frozen = on;
  }

  /** Stops the server (a restart is `stop()` then `start()`: same port, same certificate). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const server = this.server;
    this.server = null;
    if (server) await server.shutdown(0);
  }
}
