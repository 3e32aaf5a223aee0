// Hold sockets and, through nginx, credit their players at EVENT_RATE/s and edit a case price
// every CASE_EDIT_EVERY; time request → balance:updated at the player's socket (event_latency)
// and schedule slot → cases:updated at every socket (cases_fanout_latency). Fails on any missing
// event, failed request, connect failure or unexpected disconnect.
//   k6 run -e SOCKETS=2000 -e SOCKETS_PER_VU=100 -e EVENT_RATE=100 -e HOLD=60s events.js

import { int, newRunId } from './lib/config.js';
import { adminToken } from './lib/api.js';
import { holdConfig, holdScenario, holdSetup, holdSockets, holdThresholds } from './lib/hold.js';
import { summary, TREND_STATS } from './lib/summary.js';

const hold = holdConfig({ SOCKETS: 40, SOCKETS_PER_VU: 20, RAMP: '3s', HOLD: '15s', EVENT_RATE: 10, CASE_EDIT_EVERY: '2s' });
const p99 = { event: int('EVENT_P99_MS', 500), cases: int('CASES_P99_MS', 1000) };

export const options = {
  scenarios: { sockets: holdScenario(hold) },
  thresholds: {
    ...holdThresholds(hold, p99),
    'http_req_failed{name:admin_add}': ['rate==0'],
  },
  summaryTrendStats: TREND_STATS,
  setupTimeout: '120s',
};

export function setup() {
  const runId = newRunId();
  return { runId, hold: holdSetup(hold, adminToken(), runId) };
}

export function sockets(data) {
  holdSockets(hold, data.hold);
}

export const handleSummary = summary('events');
