/**
 * The Modbus function codes the gateway uses, on a modbus-serial client (RTU
 * on a serial line or over TCP; Modbus TCP frames its own PDUs, see
 * modbus-pdu.ts). Function codes from the Modbus Application Protocol
 * v1.1b3: FC 1 §6.1, FC 2 §6.2, FC 3 §6.3, FC 4 §6.4, FC 5 §6.5, FC 6 §6.6,
 * FC 15 §6.11, FC 16 §6.12.
 */
import mb from 'modbus-serial';
import type { ModbusTable } from '../../../device-profiles/index.js';
import { writeFunction } from './modbus-pdu.js';
import type { WritableTable, WriteMode } from './modbus-transport.js';

const ModbusRTU = mb.default;
/** A modbus-serial client. */
export type ModbusClient = InstanceType<typeof ModbusRTU>;

export { MAX_READ_BITS, MAX_READ_REGISTERS, MAX_WRITE_COILS, MAX_WRITE_REGISTERS, writeFunction } from './modbus-pdu.js';

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
