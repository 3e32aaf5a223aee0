// HS256 tokens and webhook signatures, computed in k6 with the same secrets as the cluster.

import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { JWT_SECRET, PAYMENT_WEBHOOK_SECRET } from './config.js';

const HEADER = encoding.b64encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'rawurl');

export function uuid() {
  return globalThis.crypto.randomUUID();
}

export function token(sub, role = 'user', ttlSeconds = 6 * 3600) {
  if (JWT_SECRET.length < 16) throw new Error('JWT_SECRET (at least 16 characters) must be set to the cluster secret');
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub, role, iat: now, exp: now + ttlSeconds };
  const signed = `${HEADER}.${encoding.b64encode(JSON.stringify(claims), 'rawurl')}`;
  return `${signed}.${crypto.hmac('sha256', JWT_SECRET, signed, 'base64rawurl')}`;
}

// Lowercase hex HMAC-SHA256 of the exact bytes that are sent.
export function webhookSignature(rawBody) {
  if (!PAYMENT_WEBHOOK_SECRET) throw new Error('PAYMENT_WEBHOOK_SECRET must be set to the cluster secret');
  return crypto.hmac('sha256', PAYMENT_WEBHOOK_SECRET, rawBody, 'hex');
}
