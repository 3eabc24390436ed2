/**
 * One node identity (issue 16): a `hub status` row's id is the broker id
 * `<nodeId>.<bootId>` that `gateways.node` and lease holders hold; the row
 * also shows the node id of the node's log lines and metrics and the boot
 * id. The cluster case end to end is in cluster-load.test.ts.
 */
import t from 'tap';
import { localClusterView, newNodeId, splitNodeId } from '../nodes.js';

t.test('a broker id splits into the node id of logs and metrics and the boot id', async (t) => {
  t.same(splitNodeId('hub-a.1a2b3c'), { nodeId: 'hub-a', bootId: '1a2b3c' });
  t.same(splitNodeId('hub.example.org.00ff99'), { nodeId: 'hub.example.org', bootId: '00ff99' }, 'a node id may hold dots: the boot id is the last part');
});

t.test('an id that is not a broker id is its own node id, with no boot id', async (t) => {
  const id = newNodeId();
  t.same(splitNodeId(id), { nodeId: id, bootId: null }, `a single hub's id (${id})`);
  t.same(splitNodeId('hub-a.1A2B3C'), { nodeId: 'hub-a.1A2B3C', bootId: null }, 'upper-case hex is not a boot id (the link writes lower case)');
  t.same(splitNodeId('hub-a.1a2b'), { nodeId: 'hub-a.1a2b', bootId: null }, 'nor a shorter suffix');
});

t.test('the single-node view shows the same fields', async (t) => {
  const v = localClusterView({ id: 'solo-1-abcdef', version: 'x', startedAt: 0, load: { connections: 0, readingsPerS: 0 }, singletons: [] });
  t.match(v.nodes[0], { id: 'solo-1-abcdef', nodeId: 'solo-1-abcdef', bootId: null });
});
