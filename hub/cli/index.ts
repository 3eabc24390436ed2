/** The hub-side `ioc-edge` commands, for operators. bin/cli.ts registers this list next to the gateway's. */
import { accountCreate } from './account-create.js';
import { auditVerify } from './audit.js';
import { claimCreate, claimList, claimRevoke } from './claim.js';
import { configDiff, configGet, configPush, configStatus, gatewayCommand } from './config.js';
import type { Command } from './command.js';
import { fwSign, fwKeygen } from './fw-sign.js';
import { fwCancel, fwPause, fwResume, fwRollout, fwStatus } from './fw-rollout.js';
import { fwUpload } from './fw-upload.js';
import { gatewayRevoke } from './gateway-revoke.js';
import { hubMigrate } from './hub-migrate.js';
import { hubExport } from './hub-export.js';
import { hubImport } from './hub-import.js';
import { hubRun } from './hub-run.js';
import { hubStatus } from './hub-status.js';
import { tokenCreate } from './token-create.js';

export type { Command, CommandIo } from './command.js';

export const hubCommands: Command[] = [hubRun, hubMigrate, hubExport, hubImport, hubStatus, claimCreate, claimList, claimRevoke, gatewayRevoke, tokenCreate, accountCreate, auditVerify, configPush, configGet, configDiff, configStatus, gatewayCommand, fwKeygen, fwSign, fwUpload, fwRollout, fwStatus, fwPause, fwResume, fwCancel];
