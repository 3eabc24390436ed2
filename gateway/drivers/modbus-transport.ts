/**
 * What a Modbus poller needs from a line: read a table range of one unit.
 * Implemented by the TCP transport here and by the RTU transports (serial,
 * RTU over TCP), each with its own scheduling rules.
 */
import type { ModbusTable } from '../../device-profiles/index.js';

/** A Modbus line shared by the devices on it. */
export interface ModbusTransport {
  readonly id: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Reads `count` registers (holding/input: uint16 words) or bits (coil/discrete)
   * from `unitId` starting at `address`. Rejects with an IocError:
   * GW_ERR_MODBUS_TIMEOUT, GW_ERR_MODBUS_CONNECT, GW_ERR_MODBUS_EXCEPTION or GW_ERR_MODBUS_IO.
   */
  read(unitId: number, table: ModbusTable, address: number, count: number): Promise<number[] | boolean[]>;
}
