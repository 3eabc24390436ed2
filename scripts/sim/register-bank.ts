/**
 * The memory of a simulated Modbus device: four tables, with encoders written
 * independently of the gateway's decoder so an end-to-end test really checks
 * the decoding.
 */
export class RegisterBank {
  readonly holding = new Map<number, number>();
  readonly input = new Map<number, number>();
  readonly coil = new Map<number, boolean>();
  readonly discrete = new Map<number, boolean>();

  word(table: 'holding' | 'input', addr: number): number {
    return this[table].get(addr) ?? 0;
  }

  bit(table: 'coil' | 'discrete', addr: number): boolean {
    return this[table].get(addr) ?? false;
  }

  setU16(table: 'holding' | 'input', addr: number, v: number): void {
    this[table].set(addr, v & 0xffff);
  }

  setI16(table: 'holding' | 'input', addr: number, v: number): void {
    this[table].set(addr, v < 0 ? (v + 0x10000) & 0xffff : v & 0xffff);
  }

  /** 32-bit unsigned; `big` puts the high word at `addr`. */
  setU32(table: 'holding' | 'input', addr: number, v: number, order: 'big' | 'little' = 'big'): void {
    const hi = Math.floor(v / 0x10000) & 0xffff;
    const lo = v % 0x10000;
    this[table].set(addr, order === 'big' ? hi : lo);
    this[table].set(addr + 1, order === 'big' ? lo : hi);
  }

  /** IEEE 754 single precision, high word first for `big`. */
  setF32(table: 'holding' | 'input', addr: number, v: number, order: 'big' | 'little' = 'big'): void {
    const b = Buffer.alloc(4);
    b.writeFloatBE(v);
    const hi = b.readUInt16BE(0);
    const lo = b.readUInt16BE(2);
    this[table].set(addr, order === 'big' ? hi : lo);
    this[table].set(addr + 1, order === 'big' ? lo : hi);
  }

  /** ASCII, two characters per register, high byte first, NUL padded to `regs` registers. */
  setString(table: 'holding' | 'input', addr: number, s: string, regs: number): void {
    const b = Buffer.alloc(regs * 2);
    b.write(s.slice(0, regs * 2), 'ascii');
    for (let i = 0; i < regs; i++) this[table].set(addr + i, b.readUInt16BE(i * 2));
  }
}
