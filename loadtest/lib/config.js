// Settings from the environment, with small defaults so a bare `k6 run` stays cheap.
// Targets must be loopback: these scripts never load anything but a local cluster.

const LOOPBACK = /^(https?|wss?):\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/;

export function env(name, fallback) {
  const value = __ENV[name];
  return value === undefined || value === '' ? fallback : value;
}

export function int(name, fallback) {
  const raw = env(name, String(fallback));
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name}: expected a non-negative integer, got ${raw}`);
  return value;
}

export function num(name, fallback) {
  const raw = env(name, String(fallback));
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name}: expected a non-negative number, got ${raw}`);
  return value;
}

// "90s", "2m", "1m30s", "500ms" or a bare number of seconds, in milliseconds.
export function duration(name, fallback) {
  const raw = env(name, fallback);
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let consumed = '';
  for (const m of raw.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]];
    consumed += m[0];
  }
  if (consumed !== raw) throw new Error(`${name}: expected a duration like 30s or 1m30s, got ${raw}`);
  return total;
}

export function seconds(ms) {
  return `${Math.ceil(ms / 1000)}s`;
}

function loopback(name, url) {
  if (!LOOPBACK.test(url)) throw new Error(`${name}=${url}: only loopback targets are allowed`);
  return url.replace(/\/+$/, '');
}

export const BASE_URL = loopback('CYBERHUB_URL', env('CYBERHUB_URL', 'http://127.0.0.1:8080'));
export const WS_URL = `${BASE_URL.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
export const JWT_SECRET = env('JWT_SECRET', '');
export const PAYMENT_WEBHOOK_SECRET = env('PAYMENT_WEBHOOK_SECRET', '');
// Ties what k6 sent to the rows check_db.sh reads (payment ids are prefixed with it).
export const RUN_ID = env('RUN_ID', 'adhoc');

// Called once, in setup(): a run id that is unique even for ad-hoc runs without RUN_ID.
export function newRunId() {
  return RUN_ID === 'adhoc' ? `adhoc${Date.now()}` : RUN_ID;
}
