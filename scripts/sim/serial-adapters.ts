/**
 * Puts simulated serial devices (an RTU slave line, a line-protocol sensor)
 * at the other end of a serial port the gateway opens:
 *
 * - {@link MockSerialHub}: serialport's in-process mock binding. The hub is a
 *   `SerialPortFactory` for the gateway; the device sees every byte the
 *   gateway writes and answers with `emitData`. `unplug()` makes the port
 *   vanish the way a pulled USB adapter does (the pending read fails, the
 *   stream closes with a disconnect error, reopening fails) and `replug()`
 *   brings it back. The binding is `SerialPortMock.binding` from 'serialport':
 *   importing @serialport/binding-mock separately in ESM loads a second copy
 *   that does not see these ports.
 * - {@link PtyPair}: a pseudo-terminal pair from socat (`apt-get install
 *   socat`), real tty devices on both ends; `kill()` and `start()` again make
 *   the gateway's port vanish and come back at the same path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { SerialPort, SerialPortMock } from 'serialport';
import { IocError } from '../../contract/index.js';
import { openSerialStream, type ByteLink, type SerialOpenOptions, type SerialPortFactory, type SerialStreamLike } from '../../gateway/southbound/drivers/byte-link.js';

/** A simulated device on a serial line: bytes in through `receive`, out through `send`. */
export interface SerialEndpoint {
  receive(data: Buffer): void;
  send: (data: Buffer) => void;
  /** The baud rate and parity the master opened the port with (the mock binding knows them, as a UART does). */
  masterSetting?: { baudRate: number; parity: 'none' | 'even' | 'odd' } | null;
}

type MockBindingPort = Awaited<ReturnType<typeof SerialPortMock.binding.open>>;

/** Serial ports on serialport's mock binding, with simulated devices behind them. */
export class MockSerialHub {
  private readonly endpoints = new Map<string, SerialEndpoint>();
  private readonly created = new Set<string>();
  private readonly unplugged = new Set<string>();
  private readonly open = new Map<string, MockBindingPort>();
  /** Settings of the last open per path (tests check baud rate and parity). */
  readonly openOptions = new Map<string, SerialOpenOptions>();

  /** Puts `endpoint` behind `path`. */
  connect(path: string, endpoint: SerialEndpoint): void {
    this.endpoints.set(path, endpoint);
    if (!this.created.has(path)) {
      SerialPortMock.binding.createPort(path);
      this.created.add(path);
    }
  }

  /** The factory to pass to the gateway (`serialPortFactory`). */
  readonly factory: SerialPortFactory = async (opts) => {
    if (this.unplugged.has(opts.path) || !this.created.has(opts.path)) {
      throw new IocError('GW_ERR_SERIAL_OPEN', `cannot open serial port ${opts.path}: No such file or directory`, { context: { path: opts.path } });
    }
    this.openOptions.set(opts.path, opts);
    const binding = { ...SerialPortMock.binding, open: async (o: Parameters<typeof SerialPortMock.binding.open>[0]) => this.attach(await SerialPortMock.binding.open(o)) };
    const port = new SerialPortMock({ path: opts.path, baudRate: opts.baudRate, dataBits: opts.dataBits, stopBits: opts.stopBits, parity: opts.parity, autoOpen: false, binding } as ConstructorParameters<typeof SerialPortMock>[0]);
    return openSerialStream(port as unknown as SerialStreamLike, opts.path);
  };

  private attach(b: MockBindingPort): MockBindingPort {
    const path = b.openOptions.path;
    this.open.set(path, b);
    const endpoint = this.endpoints.get(path);
    if (endpoint && 'masterSetting' in endpoint) endpoint.masterSetting = { baudRate: b.openOptions.baudRate, parity: (b.openOptions.parity ?? 'none') as 'none' | 'even' | 'odd' };
    const write = b.write.bind(b);
    b.write = async (buf: Buffer) => {
      await write(buf);
      endpoint?.receive(Buffer.from(buf));
    };
    if (endpoint) {
      endpoint.send = (data) => {
        if (b.isOpen && this.open.get(path) === b) b.emitData(data);
      };
    }
    return b;
  }

  /** The port vanishes (USB adapter pulled): the open stream closes with a disconnect error, reopening fails. */
  unplug(path: string): void {
    this.unplugged.add(path);
    const b = this.open.get(path);
    this.open.delete(path);
    if (!b) return;
    const gone = (): Error => Object.assign(new Error('Input/output error: device disconnected'), { code: 'EIO' });
    // Reads from now on fail like a vanished tty; a read already waiting for data is failed too.
    // Between two reads there may be none waiting yet: look again for a few ticks.
    b.read = async () => {
      throw gone();
    };
    const internals = b as unknown as { pendingRead: ((err?: Error) => void) | null };
    let tries = 0;
    const failPending = (): void => {
      const pending = internals.pendingRead;
      if (pending) {
        internals.pendingRead = null;
        pending(gone());
      } else if (b.isOpen && ++tries < 100) setTimeout(failPending, 1);
    };
    failPending();
  }

  /** The port is back; the gateway reopens it by itself. */
  replug(path: string): void {
    this.unplugged.delete(path);
  }
}

/** A socat pseudo-terminal pair: `a` for the gateway, `b` for the simulated device. */
export class PtyPair {
  private proc: ChildProcess | null = null;

  constructor(readonly a: string, readonly b: string) {}

  /** Starts socat and waits for both links to exist. */
  async start(): Promise<void> {
    this.proc = spawn('socat', [`pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`], { stdio: 'ignore' });
    const proc = this.proc;
    const failed = once(proc, 'error').then(([err]) => { throw err as Error; });
    const ready = (async () => {
      for (let i = 0; i < 200 && !(existsSync(this.a) && existsSync(this.b)); i++) await new Promise((r) => setTimeout(r, 10));
      if (!(existsSync(this.a) && existsSync(this.b))) throw new Error(`socat did not create ${this.a} and ${this.b}`);
    })();
    await Promise.race([ready, failed]);
  }

  /** Kills socat: both ends vanish (EIO on the open ports, links removed). */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
    for (let i = 0; i < 100 && (existsSync(this.a) || existsSync(this.b)); i++) await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens a real serial device (e.g. a pty end) for a simulated device and wires it up. */
export async function attachToSerialPort(path: string, endpoint: SerialEndpoint, baudRate = 9600): Promise<ByteLink> {
  const port = new SerialPort({ path, baudRate, autoOpen: false });
  const link = await openSerialStream(port as unknown as SerialStreamLike, path);
  link.on('data', (d: Buffer) => endpoint.receive(d));
  endpoint.send = (data) => link.write(data);
  return link;
}
