// Ramp to SOCKETS authenticated sockets (SOCKETS_PER_VU per VU) over RAMP, hold them for HOLD.
// Fails on any connect failure or unexpected disconnect.
//   k6 run -e SOCKETS=2000 -e SOCKETS_PER_VU=100 -e RAMP=30s -e HOLD=60s sockets.js

import { newRunId } from './lib/config.js';
import { adminToken } from './lib/api.js';
import { holdConfig, holdScenario, holdSetup, holdSockets, holdThresholds } from './lib/hold.js';
import { summary, TREND_STATS } from './lib/summary.js';

const hold = holdConfig({ SOCKETS: 40, SOCKETS_PER_VU: 20, RAMP: '5s', HOLD: '10s' });

export const options = {
  scenarios: { sockets: holdScenario(hold) },
  thresholds: holdThresholds(hold),
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

export const handleSummary = summary('sockets');
