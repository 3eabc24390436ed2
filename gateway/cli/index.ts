/** The gateway-side `ioc-edge` commands, for technicians at the cabinet. Add new commands to this list. */
import type { Command } from './command.js';
import { deviceAdd } from './device-add.js';
import { gatewayStatus } from './gateway-status.js';
import { probe } from './probe.js';
import { profileValidate } from './profile-validate.js';
import { provision } from './provision.js';
import { run } from './run.js';
import { scan } from './scan.js';
import { writePoint } from './write-point.js';

export type { Command, CommandIo } from './command.js';

export const gatewayCommands: Command[] = [profileValidate, run, provision, deviceAdd, scan, probe, writePoint, gatewayStatus];
