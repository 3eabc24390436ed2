/**
 * Measurement for docs/cluster.md (the memory-growth question of
 * aedes-persistence-redis issue #73): one cluster node on the local
 * PostgreSQL and Redis, one persistent session offline, N QoS 1 messages of
 * 200 B published to it; prints the queue length, the Redis keys and memory
 * the cluster's prefix holds, and the node's heap growth after GC.
 * `node --expose-gc --import tsx hub/cluster/test/queue-memory.ts BOUND N`
 * (not a test: it is run by hand).
 */
import mqtt from 'mqtt';
import { Redis } from 'ioredis';
import pg from 'pg';
import { silentLogger } from '../../../lib/index.js';
import { startHub } from '../../index.js';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
const bound = Number(process.argv[2]);
const N = Number(process.argv[3]);
const schema = `t_mem_${process.pid}`;
const prefix = `tmem${process.pid}:`;
const url = `postgres://postgres@127.0.0.1:5432/postgres`;
const r = new Redis('redis://127.0.0.1:6379');
const mem = async () => Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);
const keys = async () => { let c = '0', n = 0; do { const [x, k] = await r.scan(c, 'MATCH', `${prefix}*`, 'COUNT', 1000); n += k.length; c = x; } while (c !== '0'); return n; };
const hub = await startHub({ dataDir: mkdtempSync(path.join(os.tmpdir(), 'mem-')), logger: silentLogger(), mqttPort: 0, httpPort: 0, auth: { mode: 'open' }, store: `${url}?schema=${schema}`, cluster: { redis: 'redis://127.0.0.1:6379', keyPrefix: prefix }, brokerLimits: { maxQueuedPerSession: bound, maxQueuedBytesPerSession: 64 * 1024 * 1024, maxOutgoingBytes: 200 * 1024 * 1024 } });
const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'offline-sub', clean: false });
await sub.subscribeAsync('plant/q', { qos: 1 });
await sub.endAsync();
(globalThis as { gc?: () => void }).gc?.(); const m0 = await mem(); const rss0 = process.memoryUsage().rss; const heap0 = process.memoryUsage().heapUsed;
const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: 'pub' });
const payload = Buffer.alloc(200, 120);
const t0 = Date.now();
for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, () => pub.publishAsync('plant/q', payload, { qos: 1 })));
const ms = Date.now() - t0;
await new Promise((res) => setTimeout(res, 1500));
(globalThis as { gc?: () => void }).gc?.(); const m1 = await mem(); const heapDeltaMiB = Math.round((process.memoryUsage().heapUsed - heap0) / 1048576); const k1 = await keys(); const q = await r.llen(`${prefix}outgoing:offline-sub`);
console.log(JSON.stringify({ bound, published: N, queued: q, redisKeys: k1, redisMemDeltaKiB: Math.round((m1 - m0) / 1024), nodeRssDeltaMiB: Math.round((process.memoryUsage().rss - rss0) / 1048576), heapDeltaMiB, msgPerS: Math.round(N / (ms / 1000)) }));
await pub.endAsync(); await hub.stop();
const c = new pg.Client(url); await c.connect(); await c.query(`DROP SCHEMA ${schema} CASCADE`); await c.end();
let cur = '0'; do { const [x, k] = await r.scan(cur, 'MATCH', `${prefix}*`, 'COUNT', 1000); if (k.length) await r.del(...k); cur = x; } while (cur !== '0');
r.disconnect();
process.exit(0);
