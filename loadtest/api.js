// Many players at once: case opens, inventory reads and money claims (API_VUS concurrent players
// for API_DURATION), and signed payment callbacks at PAY_RATE/s with a DUP_SHARE of duplicates
// (late resends and racing pairs) that must come back duplicate:true.
//   k6 run -e API_VUS=32 -e API_DURATION=30s -e PAY_RATE=50 api.js

import { newRunId } from './lib/config.js';
import { adminToken } from './lib/api.js';
import * as traffic from './lib/traffic.js';
import { summary, TREND_STATS } from './lib/summary.js';

const api = traffic.apiConfig();

export const options = {
  scenarios: traffic.apiScenarios(api),
  thresholds: traffic.apiThresholds(api),
  summaryTrendStats: TREND_STATS,
  setupTimeout: '300s',
};

export function setup() {
  const runId = newRunId();
  return { runId, api: traffic.apiSetup(api, adminToken(), runId) };
}

export function players(data) {
  traffic.players(api, data.api);
}

export function payments(data) {
  traffic.payments(api, data.api, data.runId);
}

export const handleSummary = summary('api');
