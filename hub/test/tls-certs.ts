/**
 * Test certificates made with the openssl CLI (installed by .ci/run): a CA,
 * a hub certificate it signs for 127.0.0.1/localhost, and a second,
 * unrelated key (for mismatch tests). ECDSA P-256, valid one day.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { skipUnlessBinary } from '../../test/support/outside-binary.js';

/** For tap's `{ skip }`: false when the openssl CLI is there, else the reason (a failure under CI=true). */
export function opensslMissing(): false | string {
  return skipUnlessBinary('openssl', 'openssl');
}

/** Paths of the generated PEM files. */
export interface TestPki {
  caFile: string;
  certFile: string;
  keyFile: string;
  otherKeyFile: string;
}

/** Generates the files in `dir` (takes ~100 ms). */
export function makeTestPki(dir: string): TestPki {
  const p = (n: string): string => path.join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', '/CN=ioc-edge test CA');
  ssl('req', ...ec, '-keyout', p('hub.key'), '-out', p('hub.csr'), '-subj', '/CN=hub.test');
  writeFileSync(p('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', p('hub.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('hub.pem'), '-days', '1', '-extfile', p('san.ext'));
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', p('other.key'));
  return { caFile: p('ca.pem'), certFile: p('hub.pem'), keyFile: p('hub.key'), otherKeyFile: p('other.key') };
}
