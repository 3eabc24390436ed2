/**
 * The Modbus function codes the gateway uses, on a modbus-serial client of
 * any framing (MBAP over TCP, RTU on a serial line or over TCP). Function
 * codes from the Modbus Application Protocol v1.1b3: FC 1 §6.1, FC 2 §6.2,
 * FC 3 §6.3, FC 4 §6.4, FC 5 §6.5, FC 6 §6.6, FC 15 §6.11, FC 16 §6.12.
 */
import mb from 'modbus-serial';
import { IocError } from '../../contract/index.js';
import type { ModbusTable } from '../../device-profiles/index.js';
import type { WritableTable, WriteMode } from './modbus-transport.js';

const ModbusRTU = mb.default;
/** A modbus-serial client. */
export type ModbusClient = InstanceType<typeof ModbusRTU>;

/** Protocol maxima per request (§6.1–6.4, §6.11, §6.12). */
export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;
export const MAX_WRITE_REGISTERS = 123;
export const MAX_WRITE_COILS = 1968;

/** FC 1–4 on `client` (unit id already set). Bit reads are cut to `count` (the reply pads to whole bytes). */
export async function readTable(client: ModbusClient, table: ModbusTable, address: number, count: number): Promise<number[] | boolean[]> {
  switch (table) {
    case 'holding':
      return (await client.readHoldingRegisters(address, count)).data;
    case 'input':
      return (await client.readInputRegisters(address, count)).data;
    case 'coil':
      return (await client.readCoils(address, count)).data.slice(0, count);
    case 'discrete':
      return (await client.readDiscreteInputs(address, count)).data.slice(0, count);
  }
}

/**
 * Picks the function code for a write and checks the quantity against the
 * protocol maxima.
 * @throws IocError GW_ERR_WRITE_VALUE for an empty write, too many values, or
 *   several values with mode `single`.
 */
export function writeFunction(table: WritableTable, count: number, mode: WriteMode = 'auto'): 5 | 6 | 15 | 16 {
  const max = table === 'coil' ? MAX_WRITE_COILS : MAX_WRITE_REGISTERS;
  if (count < 1 || count > max) throw new IocError('GW_ERR_WRITE_VALUE', `a ${table} write carries 1..${max} values, not ${count}`);
  if (mode === 'single' && count > 1) throw new IocError('GW_ERR_WRITE_VALUE', `this device writes one ${table} at a time (writeMode single), not ${count}`);
  const multiple = mode === 'multiple' || count > 1;
  if (table === 'coil') return multiple ? 15 : 5;
  return multiple ? 16 : 6;
}

/** FC 5/6/15/16 on `client` (unit id already set). */
export async function writeTable(client: ModbusClient, table: WritableTable, address: number, values: number[] | boolean[], mode: WriteMode = 'auto'): Promise<void> {
  switch (writeFunction(table, values.length, mode)) {
    case 5:
      await client.writeCoil(address, values[0] as boolean);
      return;
    case 15:
      await client.writeCoils(address, values as boolean[]);
      return;
    case 6:
      await client.writeRegister(address, values[0] as number);
      return;
    case 16:
      await client.writeRegisters(address, values as number[]);
  }
}
