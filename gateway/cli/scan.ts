/**
 * `ioc-edge scan`: finds what is connected.
 * - Modbus (serial RTU, TCP, RTU over TCP): asks every unit id in the range
 *   for one register; an answer or an exception response means a device is
 *   there, a garbled reply means something is there with other serial
 *   settings, silence means nobody. Progress bar on a terminal, plain
 *   progress lines otherwise (on stderr; results on stdout).
 * - OPC UA: browses the server's address space from the Objects folder.
 * Exit code 0 when something was found, 1 when nothing was, 2 on usage or
 * line errors.
 */
import { parseArgs } from 'node:util';
import { isIocError } from '../../contract/index.js';
import type { ModbusTable } from '../../device-profiles/index.js';
import type { Command } from './command.js';
import { LINE_HELP, LINE_OPTIONS, lineKind, modbusTransport, serialSettings, unitList, type LineValues } from './line-args.js';
import { createProgress, type MaybeTty } from './progress.js';

const HELP = `Usage: ioc-edge scan (--serial PATH | --tcp HOST:PORT | --rtu-tcp HOST:PORT) [options]
       ioc-edge scan --serial PATH --auto [--baud B --parity P] [--units LIST]
       ioc-edge scan --opcua URL [--depth N] [options]

Modbus: asks every unit id for one register and lists who answers.
  --units LIST       unit ids to try, e.g. 1-247 or 1,2,10-20 (default 1-247)
  --register T:ADDR  what to read: holding:0 (default), input:0, coil:0, discrete:0
  --connections N    Modbus TCP: ids asked at once, one per connection (default 8;
                     a device that accepts fewer connections is scanned on those)
  --auto             serial: find the baud rate and parity (9600, 19200, 38400, 57600,
                     115200, 4800, 2400 × none/even/odd; --baud/--parity = the configured
                     setting, tried first), asking unit ids 1-10 at each, then 1-247 at
                     the setting that answers (--units LIST: those ids, at each and at the end);
                     says whether no bytes came back at all, only garbled ones, or
                     answers at another setting. Exit 3: found at another setting.
OPC UA: prints the address space below the Objects folder.
  --depth N          how deep to browse (default 4)

${LINE_HELP}`;

const GARBLED = new Set(['GW_ERR_MODBUS_CRC', 'GW_ERR_MODBUS_FRAME', 'GW_ERR_MODBUS_WRONG_UNIT']);
const LINE_DOWN = new Set(['GW_ERR_MODBUS_CONNECT', 'GW_ERR_SERIAL_OPEN', 'GW_ERR_SERIAL_PORT_GONE', 'GW_ERR_MODBUS_IO']);

function register(spec: string): { table: ModbusTable; address: number } {
  const m = /^(holding|input|coil|discrete):(\d{1,5})$/.exec(spec);
  if (!m || Number(m[2]) > 65535) throw new Error(`--register: expected TABLE:ADDRESS such as holding:0, got '${spec}'`);
  return { table: m[1] as ModbusTable, address: Number(m[2]) };
}

export const scan: Command = {
  name: 'scan',
  summary: 'find devices: responding unit ids on a Modbus line, or browse an OPC UA server',
  async run(args, { out, err }) {
    let values: LineValues & { units?: string; register?: string; depth?: string; connections?: string; auto?: boolean; help?: boolean };
    try {
      values = parseArgs({ args, options: { ...LINE_OPTIONS, units: { type: 'string' }, register: { type: 'string' }, depth: { type: 'string' }, connections: { type: 'string' }, auto: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }).values;
    } catch (e) {
      err.write(`${(e as Error).message}\n\n${HELP}\n`);
      return 2;
    }
    if (values.help) {
      out.write(`${HELP}\n`);
      return 0;
    }
    try {
      if (lineKind(values) === 'opcua') {
        const { browseOpcua } = await import('./opcua-tools.js');
        return await browseOpcua(values, Number(values.depth ?? 4), { out, err });
      }
      const what = register(values.register ?? 'holding:0');
      if (values.auto) {
        if (lineKind(values) !== 'serial') throw new Error('--auto finds the settings of a serial line: use it with --serial PATH');
        const { scanSerialAuto } = await import('./scan-auto.js');
        // Search a few ids at each setting, then the whole range (or --units) at the one that answers.
        const search = unitList(values.units ?? '1-10');
        return await scanSerialAuto(values, search, unitList(values.units ?? '1-247'), what, { out, err });
      }
      const units = unitList(values.units ?? '1-247');
      return await scanModbus(values, units, what, { out, err });
    } catch (e) {
      err.write(`ioc-edge scan: ${isIocError(e) || e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
  },
};

/** Connections a TCP scan opens by default: 247 silent ids × 300 ms / 8 ≈ 9 s (issue 14.8: one at a time took 76 s). */
const TCP_CONNECTIONS = 8;

async function scanModbus(v: LineValues & { connections?: string }, units: number[], what: { table: ModbusTable; address: number }, io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream }): Promise<number> {
  // Modbus TCP carries a transaction id, so several requests may be in flight: one per connection here,
  // as many devices and TCP gateways handle one transaction per connection. RTU (serial or over TCP)
  // has none: one request at a time on the line (Modbus over Serial Line v1.02 §2.4).
  const kind = lineKind(v);
  const connections = kind === 'tcp' ? connectionCount(v.connections) : 1;
  const results = new Map<number, string>();
  let found = 0;
  let done = 0;
  const progress = createProgress(io.err as MaybeTty, units.length, 'units', { eta: true });
  const where = v.serial ? `${v.serial} at ${describeSerial(v)}` : (v.tcp ?? v['rtu-tcp']);
  const queue = [...units];
  let alive = 0;
  /** One connection working through the queue. A connection the device refuses (it may accept fewer) hands its unit back, unless it is the last one. */
  const worker = async (): Promise<void> => {
    const transport = await modbusTransport(v, { timeoutMs: v.serial ? 100 : 300 });
    await transport.start();
    alive++;
    try {
      for (let unit = queue.shift(); unit !== undefined; unit = queue.shift()) {
        progress.update(done, found ? `found: ${found}` : '');
        try {
          const data = await transport.read(unit, what.table, what.address, 1, { retries: 0 });
          const v0 = data[0];
          found++;
          results.set(unit, `${String(unit).padStart(5)}  answered: ${what.table} ${what.address} = ${typeof v0 === 'number' ? `0x${v0.toString(16).padStart(4, '0')} (${v0})` : String(v0)}`);
        } catch (e) {
          const code = isIocError(e) ? e.code : 'GW_ERR_MODBUS_IO';
          if (LINE_DOWN.has(code)) {
            if (alive > 1) {
              queue.unshift(unit); // another connection carries on
              return;
            }
            throw e;
          }
          if (code === 'GW_ERR_MODBUS_EXCEPTION') {
            found++;
            results.set(unit, `${String(unit).padStart(5)}  exception ${String((e as { context: { modbusCode?: number } }).context.modbusCode)}: a device is there (the register may not exist)`);
          } else if (GARBLED.has(code)) results.set(unit, `${String(unit).padStart(5)}  garbled reply (${code}): something answers; check baud rate, parity and termination`);
        }
        done++;
      }
    } finally {
      alive--;
      await transport.stop();
    }
  };
  try {
    const outcomes = await Promise.allSettled(Array.from({ length: Math.min(connections, units.length) }, () => worker()));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    progress.update(units.length, found ? `found: ${found}` : '');
  } finally {
    progress.end();
  }
  const lines = [...results.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => l);
  const answered = [...results.entries()].filter(([, l]) => !l.includes('garbled')).map(([u]) => u).sort((a, b) => a - b);
  if (lines.length > 0) io.out.write(` unit  result\n${lines.join('\n')}\n`);
  io.out.write(answered.length > 0 ? `found ${answered.length} device${answered.length === 1 ? '' : 's'} on ${where}: unit${answered.length === 1 ? '' : 's'} ${answered.join(', ')}\n` : `no device answered on ${where} (${units.length} unit ids tried)\n`);
  return answered.length > 0 ? 0 : 1;
}

function connectionCount(value: string | undefined): number {
  if (value === undefined) return TCP_CONNECTIONS;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new Error(`--connections: '${value}' is not an integer in 1..32`);
  return n;
}

function describeSerial(v: LineValues): string {
  const s = serialSettings(v);
  return `${s.baudRate} ${s.dataBits}${s.parity[0]?.toUpperCase()}${s.stopBits}`;
}
