/**
 * XMODEM-CRC / XMODEM-1K sender against the simulated bootloader, over
 * serialport's mock binding and over a socat pty pair: handshake, blocks,
 * retransmission on NAK, CAN CAN from the device, silence, EOT handshake,
 * operator cancel.
 */
import t, { type Test } from 'tap';
import path from 'node:path';
import { openSerialPort } from '../../gateway/southbound/drivers/byte-link.js';
import { MockSerialHub, PtyPair, attachToSerialPort } from '../../scripts/sim/serial-adapters.js';
import { buildSimImage } from '../../scripts/sim/sim-firmware.js';
import { XmodemBootloaderSim, type XmodemBootloaderOptions } from '../../scripts/sim/xmodem-bootloader.js';
import { skipUnlessBinary } from '../../test/support/outside-binary.js';
import { CAN, STX, SOH, crc16Xmodem, planBlocks, xmodemFrame, xmodemSend, type ByteChannel } from '../index.js';

let n = 0;
async function setup(t: Test, opts: XmodemBootloaderOptions = {}): Promise<{ sim: XmodemBootloaderSim; link: ByteChannel & { close(): Promise<void> } }> {
  const hub = new MockSerialHub();
  const sim = new XmodemBootloaderSim({ startInBootloader: true, handshakeIntervalMs: 100, ...opts });
  const p = `/dev/ttyFW${n++}`;
  hub.connect(p, sim);
  const link = await hub.factory({ path: p, baudRate: 115200, parity: 'none', dataBits: 8, stopBits: 1 });
  t.teardown(async () => {
    sim.stop();
    await link.close();
  });
  return { sim, link };
}

t.test('CRC-16/XMODEM and frame layout (Forsberg §3.1, §8)', async (t) => {
  t.equal(crc16Xmodem(Buffer.from('123456789')), 0x31c3, 'check value');
  const f = xmodemFrame(1, Buffer.from('abc'), 128, true);
  t.equal(f.length, 133);
  t.same([f[0], f[1], f[2]], [SOH, 1, 254]);
  t.equal(f[3 + 3], 0x1a, 'padded with CPMEOF');
  t.equal(f.readUInt16BE(131), crc16Xmodem(f.subarray(3, 131)));
  const k = xmodemFrame(256, Buffer.alloc(1024, 1), 1024, true);
  t.same([k.length, k[0], k[1], k[2]], [1029, STX, 0, 255], 'block numbers wrap modulo 256');
  t.equal(xmodemFrame(3, Buffer.alloc(128), 128, false).length, 132, 'checksum mode: one check byte');
  t.same(planBlocks(2500, true), [1024, 1024, 128, 128, 128, 128], 'tail of 896 bytes or less in 128-byte blocks');
  t.same(planBlocks(3000, true), [1024, 1024, 1024], 'over 896 left: one padded 1K block');
  t.same(planBlocks(2000, true), [1024, 1024]);
  t.same(planBlocks(300, false), [128, 128, 128]);
});

t.test('XMODEM-1K delivers the image; the device installs it and reports the new version', async (t) => {
  const { sim, link } = await setup(t);
  const image = buildSimImage('2.0.0', 100_000);
  const progress: number[] = [];
  const r = await xmodemSend(link, image, { mode: 'xmodem-1k', onProgress: (b) => progress.push(b) });
  t.ok(r.crc);
  t.equal(r.blocks1k, 97);
  t.equal(r.retransmits, 0);
  t.equal(progress.at(-1), 100_000);
  await t.resolveMatch(waitFor(() => sim.state === 'app'), true);
  t.same(sim.image, image, 'the device stored exactly the image');
  t.equal(sim.version, '2.0.0');
  t.equal(sim.stats.installs, 1);
});

t.test('XMODEM-CRC uses 128-byte blocks; checksum mode when the receiver asks with NAK', async (t) => {
  const a = await setup(t);
  const image = buildSimImage('2.0.1', 5000);
  const r = await xmodemSend(a.link, image, { mode: 'xmodem-crc' });
  t.equal(r.blocks, 40);
  t.equal(r.blocks1k, 0);
  t.equal(a.sim.version, '2.0.1');
  const b = await setup(t, { crc: false });
  const r2 = await xmodemSend(b.link, image, { mode: 'xmodem-1k' });
  t.equal(r2.crc, false, 'NAK handshake: checksum mode');
  t.equal(r2.blocks1k, 0, '1K blocks need CRC');
  t.equal(b.sim.version, '2.0.1');
});

t.test('NAKed blocks are sent again', async (t) => {
  const { sim, link } = await setup(t, { nakBlocks: [2, 5, 5] });
  const image = buildSimImage('2.1.0', 20_000);
  const r = await xmodemSend(link, image, { mode: 'xmodem-1k' });
  t.equal(r.retransmits, 2);
  t.equal(sim.stats.naks, 2);
  t.same(sim.image, image);
});

t.test('a device that cancels mid-flash (CAN CAN) fails the transfer; its old version stays', async (t) => {
  const { sim, link } = await setup(t, { failAfterBlocks: 10, version: '1.0.0' });
  await t.rejects(xmodemSend(link, buildSimImage('3.0.0', 50_000), { mode: 'xmodem-1k' }), { code: 'FW_ERR_FLASH_CANCELLED', message: /at block 11/ });
  t.equal(sim.version, '1.0.0');
  t.equal(sim.stats.installs, 0);
  t.equal(sim.stats.cancels, 1);
});

t.test('silence after some blocks: retries, then CAN CAN and FW_ERR_FLASH_TIMEOUT', async (t) => {
  const { sim, link } = await setup(t, { silentAfterBlocks: 3 });
  const sent: Buffer[] = [];
  const write = link.write.bind(link);
  link.write = (d: Buffer) => {
    sent.push(d);
    write(d);
  };
  await t.rejects(xmodemSend(link, buildSimImage('3.0.0', 20_000), { mode: 'xmodem-1k', blockTimeoutMs: 80, maxRetries: 2 }), { code: 'FW_ERR_FLASH_TIMEOUT', message: /block 4 after 3 tries/ });
  t.same(sent.at(-1), Buffer.from([CAN, CAN]), 'the sender cancels');
  t.equal(sim.stats.installs, 0);
});

t.test('no bootloader handshake: FW_ERR_FLASH_TIMEOUT', async (t) => {
  const { link } = await setup(t, { startInBootloader: false });
  await t.rejects(xmodemSend(link, buildSimImage('3.0.0', 2000), { mode: 'xmodem-1k', startTimeoutMs: 200 }), { code: 'FW_ERR_FLASH_TIMEOUT', message: /did not ask for the image/ });
});

t.test('an operator cancel sends CAN CAN', async (t) => {
  const { sim, link } = await setup(t, { baudRate: 115200 });
  const ac = new AbortController();
  const p = xmodemSend(link, buildSimImage('3.0.0', 60_000), { mode: 'xmodem-1k', signal: ac.signal, onProgress: (b) => b >= 5000 && ac.abort() });
  await t.rejects(p, { code: 'FW_ERR_CANCELLED' });
  t.equal(sim.stats.installs, 0);
});

t.test('the serial port closing mid-transfer is a timeout-class failure', async (t) => {
  const { link } = await setup(t, { baudRate: 115200 });
  const p = xmodemSend(link, buildSimImage('3.0.0', 60_000), { mode: 'xmodem-1k', onProgress: (b) => b >= 3000 && void link.close() });
  await t.rejects(p, { code: 'FW_ERR_FLASH_TIMEOUT', message: /serial line closed/ });
});

// Missing socat: skipped with the package named, a failure under CI=true (.ci/run installs it).
t.test('over a socat pty pair (real tty devices)', { skip: skipUnlessBinary('socat', 'socat') }, async (t) => {
  const dir = t.testdir();
  const pair = new PtyPair(path.join(dir, 'gw'), path.join(dir, 'dev'));
  await pair.start();
  t.teardown(() => pair.kill());
  const sim = new XmodemBootloaderSim({ startInBootloader: true, handshakeIntervalMs: 100 });
  t.teardown(() => sim.stop());
  const devLink = await attachToSerialPort(pair.b, sim, 115200);
  t.teardown(() => devLink.close());
  const link = await openSerialPort({ path: pair.a, baudRate: 115200, parity: 'none', dataBits: 8, stopBits: 1 });
  t.teardown(() => link.close());
  const image = buildSimImage('4.0.0', 64_000);
  const r = await xmodemSend(link, image, { mode: 'xmodem-1k', blockTimeoutMs: 2000 });
  t.equal(r.blocks1k, 62);
  await waitFor(() => sim.state === 'app');
  t.same(sim.image, image);
  t.equal(sim.version, '4.0.0');
});

async function waitFor(fn: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
