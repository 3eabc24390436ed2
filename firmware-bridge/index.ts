/**
 * The firmware bridge: signed manifests (Ed25519 over canonical JSON), the
 * content-addressed image store, the resumable windowed chunk download, the
 * LwM2M-style job state machine, and the flashers that push an image into a
 * field device — XMODEM-CRC / XMODEM-1K over a serial bootloader and Modbus
 * FC 21 file records — with the version read-back that confirms an update.
 * Imports contract/, device-profiles/ and lib/ only; gateway and hub use it.
 */
export * from './byte-channel.js';
export * from './canonical-json.js';
export * from './chunk-download.js';
export * from './crc16.js';
export * from './download-store.js';
export * from './image-store.js';
export * from './job-machine.js';
export * from './manifest.js';
export * from './mbap-client.js';
export * from './modbus-file-flasher.js';
export * from './modbus-pdu.js';
export * from './signing.js';
export * from './version-check.js';
export * from './xmodem.js';
