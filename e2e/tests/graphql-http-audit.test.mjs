// GraphQL over HTTP conformance: graphql-http's server audit against
// BASE_URL/query. Every MUST and every SHOULD has to pass; MAYs are listed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auditServer } from 'graphql-http';
import { baseURL } from '../lib/browser.mjs';

test('graphql-http server audit: every MUST and SHOULD passes', async () => {
  const results = await auditServer({ url: baseURL() + '/query' });
  const failed = [];
  const tally = { MUST: [0, 0], SHOULD: [0, 0], MAY: [0, 0] };
  for (const r of results) {
    const level = r.name.split(' ')[0];
    tally[level][1]++;
    if (r.status === 'ok') {
      tally[level][0]++;
    } else if (level !== 'MAY') {
      failed.push(`${r.id} ${r.name}: ${r.reason}`);
    }
  }
  for (const [level, [ok, all]] of Object.entries(tally)) {
    console.log(`${level}: ${ok}/${all}`);
  }
  assert.deepEqual(failed, [], 'audits that failed');
});
