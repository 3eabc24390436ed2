/** The firmware contract: topics, payload validators, the binary chunk frame, LwM2M mapping. */
import t from 'tap';
import {
  FW_RESULT, chunkCount, decodeChunkFrame, encodeChunkFrame, fwTopics, lwm2mState, parseTopic,
  validateFirmwareCancel, validateFirmwareOffer, validateFirmwareRequest, validateFirmwareState, validateFirmwareSync, validateSignedManifest,
} from '../index.js';

const sha = 'ab'.repeat(32);
const manifest = { v: 1, model: 'flood-level-sensor', version: '2.1.0', size: 1000, sha256: sha, chunkSize: 1024, createdAt: 1 };
const signature = { alg: 'Ed25519', keyId: '0123456789abcdef', value: `${'A'.repeat(86)}==` };

t.test('fw topics are per-gateway contract topics', async (t) => {
  t.same(parseTopic(fwTopics.offer('gw-1')), { gateway: 'gw-1', kind: 'fw', rest: ['offer'] });
  t.same(parseTopic(fwTopics.state('gw-1')), { gateway: 'gw-1', kind: 'fw', rest: ['state'] });
  t.equal(fwTopics.allRequest, 'ioc/v1/gw/+/fw/request');
});

t.test('manifest and payload validation', async (t) => {
  t.ok(validateSignedManifest({ manifest, signature }));
  t.ok(validateSignedManifest({ manifest }), 'unsigned is well-formed; refusing it is the verifier’s job');
  t.throws(() => validateSignedManifest({ manifest: { ...manifest, sha256: 'XYZ' }, signature }), { code: 'FW_ERR_MANIFEST', message: /\/manifest\/sha256/ });
  t.throws(() => validateSignedManifest({ manifest: { ...manifest, chunkSize: 10 }, signature }), { code: 'FW_ERR_MANIFEST', message: /chunkSize/ });
  t.throws(() => validateSignedManifest({ manifest: { ...manifest, extra: 1 }, signature }), { code: 'FW_ERR_MANIFEST', message: /additional properties 'extra'/ });
  t.ok(validateFirmwareOffer({ v: 1, job: 'j1', rollout: 'r1', device: 'flood-1', signed: { manifest, signature }, issuedAt: 5 }));
  t.throws(() => validateFirmwareOffer({ v: 1, job: 'j1', rollout: 'r1', device: 'a/b', signed: { manifest }, issuedAt: 5 }), { code: 'CONTRACT_ERR_INVALID_PAYLOAD', message: /\/device/ });
  t.throws(() => validateFirmwareOffer({ v: 1, job: 'j1', rollout: 'r1', device: 'd', signed: { manifest: { ...manifest, size: 0 } }, issuedAt: 5 }), { message: /\/signed\/manifest\/size/ });
  t.ok(validateFirmwareRequest({ v: 1, job: 'j1', image: sha, indices: [0, 1, 2] }));
  t.throws(() => validateFirmwareRequest({ v: 1, job: 'j1', image: sha, indices: [] }), { message: /fewer than 1/ });
  t.throws(() => validateFirmwareRequest({ v: 1, job: 'j1', image: sha, indices: Array.from({ length: 65 }, (_, i) => i) }), { message: /more than 64/ });
  t.ok(validateFirmwareState({ v: 1, job: 'j1', device: 'd', seq: 1, ts: 1, state: 'failed', result: 5, error: { code: 'FW_ERR_INTEGRITY', message: 'm' } }));
  t.throws(() => validateFirmwareState({ v: 1, job: 'j1', device: 'd', seq: 1, ts: 1, state: 'bricked', result: 5 }), { message: /\/state/ });
  t.throws(() => validateFirmwareState({ v: 1, job: 'j1', device: 'd', seq: 1, ts: 1, state: 'failed', result: 10 }), { message: /\/result/ });
  t.ok(validateFirmwareSync({ v: 1, jobs: [{ job: 'j1', state: 'downloading' }] }));
  t.ok(validateFirmwareCancel({ v: 1, job: 'j1', reason: 'operator' }));
});

t.test('chunk frames round-trip and detect damage', async (t) => {
  const data = Buffer.from('hello firmware');
  const buf = encodeChunkFrame({ kind: 'data', index: 7, image: sha, data });
  const f = decodeChunkFrame(buf);
  t.same({ kind: f.kind, index: f.index, image: f.image }, { kind: 'data', index: 7, image: sha });
  t.same(f.kind === 'data' && Buffer.from(f.data), data);
  const err = decodeChunkFrame(encodeChunkFrame({ kind: 'error', index: 3, image: sha, error: { code: 'FW_ERR_IMAGE_NOT_FOUND', message: 'gone' } }));
  t.same(err, { kind: 'error', index: 3, image: sha, error: { code: 'FW_ERR_IMAGE_NOT_FOUND', message: 'gone' } });
  const flipped = Buffer.from(buf);
  flipped[flipped.length - 1]! ^= 1;
  t.throws(() => decodeChunkFrame(flipped), { code: 'FW_ERR_TRANSFER', message: /CRC-32/ });
  t.throws(() => decodeChunkFrame(Buffer.from('nope')), { code: 'CONTRACT_ERR_INVALID_PAYLOAD' });
  const badMagic = Buffer.from(buf);
  badMagic[0] = 0x58;
  t.throws(() => decodeChunkFrame(badMagic), { message: /wrong magic/ });
});

t.test('LwM2M state mapping and chunk count', async (t) => {
  t.equal(lwm2mState('downloading', 0), 1);
  t.equal(lwm2mState('downloaded', 0), 2);
  t.equal(lwm2mState('updating', 0), 3);
  t.equal(lwm2mState('updated', FW_RESULT.success), 0);
  t.equal(lwm2mState('failed', FW_RESULT.integrityFailure), 0);
  t.equal(lwm2mState('failed', FW_RESULT.updateFailed), 2);
  t.equal(chunkCount(1_048_576, 16_384), 64);
  t.equal(chunkCount(1_048_577, 16_384), 65);
});
