/** Manifests: canonical JSON, Ed25519 signing and every refusal a gateway makes; the content-addressed store. */
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import {
  ImageStore, buildManifest, canonicalJson, generateSigningKey, parsePrivateKey, parsePublicKey, sha256Hex, signManifest, sliceChunk, verifyImage, verifyManifest,
} from '../index.js';

const image = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 7) & 0xff));

function keys() {
  const g = generateSigningKey();
  const { key, keyId } = parsePrivateKey(g.privateKeyPem);
  return { g, key, keyId, trusted: parsePublicKey(g.publicKey) };
}

t.test('canonical JSON sorts keys at every level and has no whitespace', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 'é' }], c: null }, u: undefined }), '{"a":{"c":null,"d":[1,{"y":"é","z":1}]},"b":1}');
  t.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  t.throws(() => canonicalJson({ x: Number.NaN }), /cannot hold NaN/);
});

t.test('keys: ids, raw and PEM public keys, wrong key types', async (t) => {
  const { g, keyId, trusted } = keys();
  t.equal(keyId, g.keyId);
  t.equal(trusted.keyId, g.keyId);
  t.match(g.keyId, /^[0-9a-f]{16}$/);
  const pem = trusted.key.export({ format: 'pem', type: 'spki' }).toString();
  t.equal(parsePublicKey(pem).keyId, g.keyId, 'a PEM public key gives the same id');
  t.throws(() => parsePublicKey('AAAA'), { code: 'FW_ERR_MANIFEST', message: /32 bytes/ });
  t.throws(() => parsePrivateKey('not a key'), { code: 'FW_ERR_MANIFEST' });
});

t.test('a signed manifest verifies; every tampering is refused with its own code', async (t) => {
  const a = keys();
  const b = keys();
  const m = buildManifest(image, { model: 'flood-level-sensor', version: '2.1.0', versionCode: 0x0201, chunkSize: 4096, createdAt: 1 });
  t.equal(m.sha256, createHash('sha256').update(image).digest('hex'));
  t.equal(m.size, image.length);
  const signed = signManifest(m, a.key, a.keyId);
  t.same(verifyManifest(signed, [b.trusted, a.trusted], 'flood-level-sensor'), signed);
  // Key order on the wire does not matter: the signature covers canonical JSON.
  const reordered = JSON.parse(JSON.stringify({ signature: signed.signature, manifest: Object.fromEntries(Object.entries(m).reverse()) }));
  t.ok(verifyManifest(reordered, [a.trusted]));

  t.throws(() => verifyManifest({ manifest: m }, [a.trusted]), { code: 'FW_ERR_UNSIGNED' });
  t.throws(() => verifyManifest(signed, [b.trusted]), { code: 'FW_ERR_UNTRUSTED_KEY', message: new RegExp(a.keyId) });
  t.throws(() => verifyManifest(signed, []), { code: 'FW_ERR_UNTRUSTED_KEY', message: /trusted: none/ });
  t.throws(() => verifyManifest({ ...signed, manifest: { ...m, version: '9.9.9' } }, [a.trusted]), { code: 'FW_ERR_SIGNATURE' }, 'altered manifest');
  t.throws(() => verifyManifest({ ...signed, manifest: { ...m, sha256: sha256Hex(Buffer.from('evil')) } }, [a.trusted]), { code: 'FW_ERR_SIGNATURE' }, 'swapped image hash');
  const forged = signManifest(m, b.key, a.keyId); // signed by b, claiming a's key id
  t.throws(() => verifyManifest(forged, [a.trusted]), { code: 'FW_ERR_SIGNATURE' }, 'mis-signed');
  const sig = Buffer.from(signed.signature!.value, 'base64');
  sig[10]! ^= 0x40;
  t.throws(() => verifyManifest({ ...signed, signature: { ...signed.signature!, value: sig.toString('base64') } }, [a.trusted]), { code: 'FW_ERR_SIGNATURE' }, 'bad signature bytes');
  t.throws(() => verifyManifest(signed, [a.trusted], 'traffic-signal-controller'), { code: 'FW_ERR_WRONG_MODEL', message: /for model 'flood-level-sensor'/ });
  t.throws(() => verifyManifest({ manifest: { ...m, chunkSize: 7 } }, [a.trusted]), { code: 'FW_ERR_MANIFEST' });
  t.throws(() => verifyManifest('nope', [a.trusted]), { code: 'FW_ERR_MANIFEST' });
});

t.test('images are checked against size and SHA-256', async (t) => {
  const m = buildManifest(image, { model: 'x', version: '1' });
  verifyImage(m, image);
  t.throws(() => verifyImage(m, image.subarray(0, 49_000)), { code: 'FW_ERR_INTEGRITY', message: /truncated/ });
  const flipped = Buffer.from(image);
  flipped[100]! ^= 1;
  t.throws(() => verifyImage(m, flipped), { code: 'FW_ERR_INTEGRITY', message: /SHA-256/ });
});

t.test('content-addressed store: one copy per content, atomic, chunk slices', async (t) => {
  const store = new ImageStore(t.testdir());
  const r1 = await store.put(image);
  t.same(r1, { sha256: sha256Hex(image), size: image.length, created: true });
  t.equal((await store.put(image)).created, false, 'same bytes are not stored twice');
  t.match(store.pathOf(r1.sha256), new RegExp(`sha256/${r1.sha256.slice(0, 2)}/${r1.sha256}$`));
  t.same(await store.read(r1.sha256), image);
  t.equal(await store.size(r1.sha256), image.length);
  t.same(await readFile(store.pathOf(r1.sha256)), image);
  const missing = sha256Hex(Buffer.from('absent'));
  await t.rejects(store.read(missing), { code: 'FW_ERR_IMAGE_NOT_FOUND' });
  await t.rejects(store.size(missing), { code: 'FW_ERR_IMAGE_NOT_FOUND' });
  t.throws(() => store.pathOf('../../etc/passwd'), { code: 'FW_ERR_MANIFEST' });
  t.equal(sliceChunk(image, 12, 4096).length, 50_000 - 12 * 4096);
  t.equal(sliceChunk(image, 13, 4096).length, 0);
  await writeFile(store.pathOf(r1.sha256), Buffer.from('tampered'));
  t.throws(() => verifyImage(buildManifest(image, { model: 'x', version: '1' }), Buffer.from('tampered')), { code: 'FW_ERR_INTEGRITY' });
  await store.remove(r1.sha256);
  t.equal(await store.has(r1.sha256), false);
});
