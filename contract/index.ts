/**
 * ioc-edge contract: what gateway and hub agree on — topic names, payload
 * schemas and validators, the error catalogue. Imports nothing of ours.
 */
export * from './errors.js';
export * from './firmware.js';
export * from './gateway-config.js';
export * from './hub-url.js';
export * from './provisioning.js';
export * from './remote-config.js';
export * from './topics.js';
export * from './types.js';
export * from './validate.js';
