// Friday night: sockets held with balance events and case edits (events.js), while players open
// cases and claim, and the payment provider calls back with duplicates (api.js), all at once.
// The api traffic starts once the sockets have ramped and ends before they close.
//   k6 run -e SOCKETS=2000 -e SOCKETS_PER_VU=100 -e EVENT_RATE=50 -e API_VUS=16 -e HOLD=60s mixed.js

import { int, newRunId, seconds } from './lib/config.js';
import { adminToken } from './lib/api.js';
import { holdConfig, holdScenario, holdSetup, holdSockets, holdThresholds } from './lib/hold.js';
import * as traffic from './lib/traffic.js';
import { summary, TREND_STATS } from './lib/summary.js';

const hold = holdConfig({ SOCKETS: 40, SOCKETS_PER_VU: 20, RAMP: '3s', HOLD: '15s', EVENT_RATE: 5, CASE_EDIT_EVERY: '3s' });
// By default the api traffic fills the hold, leaving the event timeout at its end.
const apiDefault = seconds(Math.max(1000, hold.holdMs - hold.eventTimeoutMs));
const api = traffic.apiConfig({ API_VUS: 2, API_DURATION: apiDefault, PAY_RATE: 3 });
const p99 = { event: int('EVENT_P99_MS', 500), cases: int('CASES_P99_MS', 1000) };

export const options = {
  scenarios: {
    sockets: holdScenario(hold),
    ...traffic.apiScenarios(api, seconds(hold.leadMs + hold.rampMs)),
  },
  thresholds: { ...holdThresholds(hold, p99), ...traffic.apiThresholds(api) },
  summaryTrendStats: TREND_STATS,
  setupTimeout: '300s',
};

export function setup() {
  const runId = newRunId();
  const admin = adminToken();
  return { runId, api: traffic.apiSetup(api, admin, runId), hold: holdSetup(hold, admin, runId) };
}

export function sockets(data) {
  holdSockets(hold, data.hold);
}

export function players(data) {
  traffic.players(api, data.api);
}

export function payments(data) {
  traffic.payments(api, data.api, data.runId);
}

export const handleSummary = summary('mixed');
