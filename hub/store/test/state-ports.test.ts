/**
 * The SQLite stores satisfy the state ports (hub/store/state-ports.ts): a
 * type-level check, done by `tsc --noEmit` (part of `npm test`); tap only
 * confirms the file loads. A PostgreSQL implementation of a port gets its
 * behaviour tested by a conformance suite, as the telemetry port is.
 */
import t from 'tap';
import type { ConfigStore } from '../sqlite/config-store.js';
import type { FirmwareDb } from '../sqlite/firmware-db.js';
import type { AuditLog } from '../sqlite/audit-log.js';
import type { IdentityStore } from '../sqlite/identity-store.js';
import type { RegistryStore } from '../sqlite/registry-store.js';
import type { AuditPort, ConfigPort, FirmwarePort, IdentityPort, RegistryPort } from '../state-ports.js';

type Satisfies<Port, Impl extends Port> = Impl;
export type Checked = [
  Satisfies<RegistryPort, RegistryStore>,
  Satisfies<IdentityPort, IdentityStore>,
  Satisfies<AuditPort, AuditLog>,
  Satisfies<ConfigPort, ConfigStore>,
  Satisfies<FirmwarePort, FirmwareDb>,
];

t.pass('the SQLite stores satisfy the state ports (checked by tsc)');
