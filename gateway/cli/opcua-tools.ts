/**
 * OPC UA helpers of the technician CLI (imported lazily: node-opcua takes a
 * second to load): a one-off client from the command-line options, a browse
 * of the address space for `scan --opcua`, and a one-shot read of a profile's
 * points for `probe --opcua`.
 */
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AttributeIds, BrowseDirection, MessageSecurityMode, NodeClass, NodeClassMask, OPCUACertificateManager, OPCUAClient, SecurityPolicy,
  UserTokenType, resolveNodeId, type ClientSession, type ReferenceDescription,
} from 'node-opcua';
import { IocError } from '../../contract/index.js';
import { coerceOpcuaValue, type OpcuaProfile } from '../../device-profiles/index.js';
import { classifyOpcuaError } from '../southbound/drivers/opcua-line.js';
import type { LineValues } from './line-args.js';
import { printTable } from './table.js';

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** Connects with the CLI options and runs `fn` in a session; always disconnects. */
async function withSession<T>(v: LineValues, fn: (session: ClientSession) => Promise<T>): Promise<T> {
  const url = v.opcua as string;
  const mode = (v['security-mode'] ?? 'None') as keyof typeof MessageSecurityMode;
  if (!['None', 'Sign', 'SignAndEncrypt'].includes(mode)) throw new IocError('CONFIG_ERR_INVALID', `--security-mode: '${mode}' is not None, Sign or SignAndEncrypt`);
  const policy = (v['security-policy'] ?? (mode === 'None' ? 'None' : 'Basic256Sha256')) as keyof typeof SecurityPolicy;
  const cm = new OPCUACertificateManager({
    rootFolder: v['pki-dir'] ?? mkdtempSync(path.join(tmpdir(), 'ioc-edge-pki-')),
    automaticallyAcceptUnknownCertificate: v['dev-mode'] === true,
    disableFileWatchers: true,
  } as ConstructorParameters<typeof OPCUACertificateManager>[0]);
  await cm.initialize();
  for (const file of v.trust ?? []) {
    const data = await readFile(file);
    const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(data.toString('latin1'));
    await cm.trustCertificate(m ? Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64') : data);
  }
  const client = OPCUAClient.create({
    applicationName: 'ioc-edge-cli', endpointMustExist: false, connectionStrategy: { maxRetry: 0 },
    securityMode: MessageSecurityMode[mode], securityPolicy: SecurityPolicy[policy], clientCertificateManager: cm,
  });
  try {
    await client.connect(url);
    const session = await client.createSession(v.user ? { type: UserTokenType.UserName, userName: v.user, password: v.password ?? '' } : { type: UserTokenType.Anonymous });
    try {
      return await fn(session);
    } finally {
      await session.close().catch(() => undefined);
    }
  } catch (err) {
    // Name this command's own flag, not the gateway configuration's trustList (issue 14.8).
    throw classifyOpcuaError(err, url, "pass the server's certificate with --trust FILE.pem (repeatable; DER works too), or --dev-mode to accept any server (never in the field)");
  } finally {
    await client.disconnect().catch(() => undefined);
    await cm.dispose().catch(() => undefined);
  }
}

/** `scan --opcua`: the address space below Objects, as an indented tree with node ids, types and values. */
export async function browseOpcua(v: LineValues, depth: number, io: Io): Promise<number> {
  let count = 0;
  await withSession(v, async (session) => {
    const namespaces = await session.readNamespaceArray();
    io.out.write(`namespaces: ${namespaces.map((u, i) => `ns=${i} ${u}`).join(', ')}\n`);
    const walk = async (nodeId: string, level: number): Promise<void> => {
      if (level > depth) return;
      const result = await session.browse({
        nodeId, browseDirection: BrowseDirection.Forward, referenceTypeId: 'HierarchicalReferences', includeSubtypes: true,
        nodeClassMask: NodeClassMask.Object | NodeClassMask.Variable, resultMask: 0x3f,
      });
      const refs = (result.references ?? []).filter((r: ReferenceDescription) => !(r.nodeId.namespace === 0 && r.nodeId.value === 2253)); // skip the Server object
      const vars = refs.filter((r) => r.nodeClass === NodeClass.Variable);
      const values = vars.length ? await session.read(vars.map((r) => ({ nodeId: r.nodeId, attributeId: AttributeIds.Value }))) : [];
      for (const r of refs) {
        count++;
        const indent = '  '.repeat(level);
        const id = r.nodeId.toString();
        if (r.nodeClass === NodeClass.Variable) {
          const dv = values[vars.indexOf(r)];
          const shown = dv?.statusCode.isGood() ? JSON.stringify(dv.value.value) : dv?.statusCode.name;
          io.out.write(`${indent}${r.browseName.name}  ${id}  ${dv?.value.dataType !== undefined ? dvType(dv.value.dataType) : ''} = ${shown}\n`);
        } else {
          io.out.write(`${indent}${r.browseName.name}/  ${id}\n`);
          await walk(id, level + 1);
        }
      }
    };
    await walk(resolveNodeId('ObjectsFolder').toString(), 0);
  });
  io.out.write(`${count} nodes below Objects on ${v.opcua}\n`);
  return count > 0 ? 0 : 1;
}

function dvType(t: number): string {
  const names: Record<number, string> = { 1: 'Boolean', 2: 'SByte', 3: 'Byte', 4: 'Int16', 5: 'UInt16', 6: 'Int32', 7: 'UInt32', 8: 'Int64', 9: 'UInt64', 10: 'Float', 11: 'Double', 12: 'String', 13: 'DateTime', 21: 'LocalizedText' };
  return names[t] ?? `type ${t}`;
}

/** `probe --opcua`: reads every point of an OPC UA profile once. */
export async function probeOpcua(v: LineValues, profile: OpcuaProfile, io: Io): Promise<number> {
  let bad = 0;
  await withSession(v, async (session) => {
    const namespaces = await session.readNamespaceArray();
    const ns = profile.opcua.namespaceUri ? namespaces.indexOf(profile.opcua.namespaceUri) : -1;
    if (profile.opcua.namespaceUri && ns < 0) throw new IocError('GW_ERR_OPCUA_NODE', `namespace ${profile.opcua.namespaceUri} is not on ${v.opcua} (it has: ${namespaces.join(', ')})`);
    const ids = profile.points.map((p) => (p.nodeId.startsWith('ns=') || ns < 0 ? p.nodeId : `ns=${ns};${p.nodeId}`));
    const dvs = await session.read(ids.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
    const rows = profile.points.map((p, i) => {
      const dv = dvs[i];
      let value = '';
      if (dv?.statusCode.isGood()) {
        try {
          value = JSON.stringify(coerceOpcuaValue(p, dv.value.value));
        } catch (e) {
          value = `(${(e as Error).message})`;
          bad++;
        }
      } else bad++;
      return [p.name, value, p.unit ?? '', dv?.statusCode.name ?? '?', ids[i] as string, dv?.value.value === undefined ? '' : JSON.stringify(dv.value.value)];
    });
    printTable(io.out, ['point', 'value', 'unit', 'status', 'node', 'raw'], rows);
  });
  io.out.write(`${profile.points.length - bad}/${profile.points.length} points read from ${v.opcua} with profile ${profile.model}\n`);
  return bad === 0 ? 0 : 1;
}
