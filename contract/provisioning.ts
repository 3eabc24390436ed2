/**
 * Claim tokens and the provisioning session, as gateway and hub both see
 * them. A claim token is `{claimId}.{secret}` in lower-case RFC 4648 base32
 * (letters a–z and digits 2–7, so it can be typed from a printed sheet);
 * the technician may type it in upper case or with dashes between groups.
 *
 * A gateway holding a claim connects with username {@link CLAIM_USERNAME},
 * the whole token as password and client id {@link claimClientId}; it may
 * then only publish `ioc/v1/provision/{claimId}/request` and subscribe
 * `ioc/v1/provision/{claimId}/response`.
 */

/** MQTT username of a claim session. */
export const CLAIM_USERNAME = 'claim';

/** Base32 alphabet of claim ids and secrets (RFC 4648 §6, lower case). */
export const CLAIM_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** Length of a claim id (50 bits) and of its secret (130 bits), in characters. */
export const CLAIM_ID_LENGTH = 10;
export const CLAIM_SECRET_LENGTH = 26;

/** The MQTT client id a claim session must use. */
export function claimClientId(claimId: string): string {
  return `prov-${claimId}`;
}

/** Joins a claim id and secret into the token handed to the technician. */
export function formatClaimToken(claimId: string, secret: string): string {
  return `${claimId}.${secret}`;
}

/**
 * Splits a typed claim token into id and secret, forgiving upper case,
 * surrounding blanks and dashes or spaces inside the secret. Null when it
 * cannot be a claim token.
 */
export function parseClaimToken(token: string): { claimId: string; secret: string } | null {
  const norm = token.trim().toLowerCase();
  const dot = norm.indexOf('.');
  if (dot < 0) return null;
  const claimId = norm.slice(0, dot);
  const secret = norm.slice(dot + 1).replace(/[-\s]/g, '');
  const re = new RegExp(`^[${CLAIM_ALPHABET}]+$`);
  if (claimId.length !== CLAIM_ID_LENGTH || secret.length !== CLAIM_SECRET_LENGTH || !re.test(claimId) || !re.test(secret)) return null;
  return { claimId, secret };
}
