// handleSummary: a compact text report on stdout and a JSON file (results/<scenario>-summary.json
// unless SUMMARY_FILE says otherwise) that check_db.sh and run.sh read.

import { env } from './config.js';

export const TREND_STATS = ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max', 'count'];

function fmt(v) {
  if (v === undefined || v === null) return '-';
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(2);
}

export function summary(scenario) {
  return (data) => {
    const setup = data.setup_data || {};
    const failed = [];
    const metrics = {};
    for (const [name, m] of Object.entries(data.metrics)) {
      metrics[name] = { type: m.type, contains: m.contains, values: m.values };
      if (m.thresholds) {
        metrics[name].thresholds = m.thresholds;
        for (const [expr, r] of Object.entries(m.thresholds)) if (!r.ok) failed.push(`${name}: ${expr}`);
      }
    }
    const out = {
      scenario,
      runId: setup.runId || null,
      finishedAt: new Date().toISOString(),
      testRunDurationMs: data.state && data.state.testRunDurationMs,
      thresholdsFailed: failed,
      metrics,
    };

    const lines = [`\n== ${scenario} (run ${out.runId}) in ${fmt((out.testRunDurationMs || 0) / 1000)} s ==`];
    const names = Object.keys(metrics).sort();
    for (const name of names) {
      const { type, contains, values } = metrics[name];
      if (/^(data_|vus|iteration|http_req_(blocked|connecting|tls|sending|waiting|receiving)|ws_msgs|ws_sessions)/.test(name) && !metrics[name].thresholds) continue;
      const unit = contains === 'time' ? ' ms' : '';
      if (type === 'trend') {
        lines.push(`${name.padEnd(44)} p50=${fmt(values.med)}${unit} p90=${fmt(values['p(90)'])}${unit} p99=${fmt(values['p(99)'])}${unit} max=${fmt(values.max)}${unit} n=${fmt(values.count)}`);
      } else if (type === 'counter') {
        lines.push(`${name.padEnd(44)} ${fmt(values.count)} (${fmt(values.rate)}/s)`);
      } else if (type === 'rate') {
        lines.push(`${name.padEnd(44)} ${fmt(values.rate * 100)}% of ${fmt(values.passes + values.fails)}`);
      } else if (type === 'gauge') {
        lines.push(`${name.padEnd(44)} ${fmt(values.value)} (max ${fmt(values.max)})`);
      }
    }
    lines.push(failed.length ? `THRESHOLDS FAILED:\n  ${failed.join('\n  ')}` : 'all thresholds passed');
    const file = env('SUMMARY_FILE', `results/${scenario}-summary.json`);
    return { stdout: `${lines.join('\n')}\n`, [file]: JSON.stringify(out, null, 2) };
  };
}
