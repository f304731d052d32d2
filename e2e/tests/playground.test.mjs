// The GraphQL Playground at BASE_URL/: it must render from the server's own
// assets, run queries over HTTP and subscriptions over graphql-transport-ws,
// and carry the headers editor's Authorization header on both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, baseURL, watchPage, screenshotPath } from '../lib/browser.mjs';

const base = baseURL();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

// openPlayground loads the page in a fresh context and waits for GraphiQL's
// query editor to hold the default query.
async function openPlayground(t) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const seen = watchPage(page);
  const res = await page.goto(base + '/', { waitUntil: 'load' });
  assert.equal(res.status(), 200, 'the Playground page answers 200');
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: 30_000 });
  await definePageHelpers(page);
  await page.waitForFunction(() => window.editorValue('.graphiql-query-editor').length > 0, null, {
    timeout: 10_000,
  });
  return { page, seen };
}

// definePageHelpers gives the page small functions to read and write
// GraphiQL's CodeMirror editors.
async function definePageHelpers(page) {
  await page.evaluate(() => {
    const cm = (selector) => {
      const el = document.querySelector(selector + ' .CodeMirror');
      if (!el || !el.CodeMirror) throw new Error('no CodeMirror editor under ' + selector);
      return el.CodeMirror;
    };
    window.editorValue = (selector) => cm(selector).getValue();
    window.setEditorValue = (selector, value) => cm(selector).setValue(value);
  });
}

async function setHeaders(page, headers) {
  await page.getByRole('button', { name: 'Headers' }).click();
  await page.evaluate((value) => {
    const editors = [...document.querySelectorAll('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')];
    if (editors.length !== 1) throw new Error(`expected one visible tool editor, found ${editors.length}`);
    editors[0].CodeMirror.setValue(value);
  }, JSON.stringify(headers));
}

// runAndReadResult clicks the run button and returns the result pane's JSON.
async function runAndReadResult(page) {
  await page.evaluate(() => window.setEditorValue('.graphiql-response', ''));
  await page.locator('button.graphiql-execute-button').click();
  const handle = await page.waitForFunction(
    () => {
      const text = window.editorValue('.graphiql-response').trim();
      if (!text) return null;
      try {
        return JSON.parse(text);
      } catch {
        return null;
      }
    },
    null,
    { timeout: 15_000 },
  );
  return handle.jsonValue();
}

test('renders from local assets only and runs the default query', { timeout: 90_000 }, async (t) => {
  const { page, seen } = await openPlayground(t);

  const query = await page.evaluate(() => window.editorValue('.graphiql-query-editor'));
  assert.match(query, /viewer\s*{\s*id\s+handle/, 'the default query asks for the viewer');
  assert.match(query, /creators\(first: 5\)/, 'the default query lists creators');

  const result = await runAndReadResult(page);
  assert.ok(
    typeof result === 'object' && result !== null && ('data' in result || 'errors' in result),
    `the result pane shows a GraphQL response, got ${JSON.stringify(result)}`,
  );

  const posts = seen.requests.filter((r) => r.method === 'POST' && r.url === base + '/query');
  assert.ok(posts.length >= 1, 'the query was POSTed to /query');
  const sent = posts.map((r) => JSON.parse(r.postData)).find((b) => /creators\(first: 5\)/.test(b.query));
  assert.ok(sent, 'one POST carried the default query as JSON');
  assert.match(posts[0].headers['content-type'], /^application\/json/);

  await page.screenshot({ path: screenshotPath('playground'), fullPage: true });

  assert.deepEqual(seen.offMachine(), [], 'no request left this machine');
  assert.deepEqual(seen.pageErrors, [], 'no uncaught errors');
  const cspViolations = seen.consoleErrors.filter((m) => /Content Security Policy/i.test(m));
  assert.deepEqual(cspViolations, [], 'nothing was blocked by the page CSP');
  const localAssets = seen.requests.filter((r) => r.url.startsWith(base + '/assets/'));
  assert.ok(localAssets.length >= 6, `the page loaded its own assets (${localAssets.length})`);
});

test('sends the Authorization header from the headers editor with queries', { timeout: 90_000 }, async (t) => {
  const { page, seen } = await openPlayground(t);
  await setHeaders(page, { Authorization: 'Bearer e2e-http-token' });

  await runAndReadResult(page);

  const withAuth = seen.requests.filter(
    (r) => r.method === 'POST' && r.url === base + '/query' && r.headers['authorization'] === 'Bearer e2e-http-token',
  );
  assert.ok(withAuth.length >= 1, 'a POST to /query carried the Authorization header');
});

// The browser's WebSocket to /query is answered here, in the test, so that
// what the Playground sends (protocol messages, connection_init payload) can
// be checked exactly, whatever the server under test does with it.
test('runs subscriptions over graphql-transport-ws with Authorization in connection_init', { timeout: 90_000 }, async (t) => {
  const { page } = await openPlayground(t);

  const received = [];
  let socketURL;
  await page.routeWebSocket(/\/query$/, (ws) => {
    socketURL = ws.url();
    ws.onMessage((raw) => {
      const msg = JSON.parse(raw);
      received.push(msg);
      if (msg.type === 'connection_init') {
        ws.send(JSON.stringify({ type: 'connection_ack' }));
      } else if (msg.type === 'subscribe') {
        ws.send(JSON.stringify({
          id: msg.id,
          type: 'next',
          payload: { data: { dropUpdated: { status: 'LIVE', stock: { available: 41 } } } },
        }));
        ws.send(JSON.stringify({ id: msg.id, type: 'complete' }));
      }
    });
  });

  await setHeaders(page, { authorization: 'Bearer e2e-ws-token' });
  const subscription = '# watch one drop\nsubscription Watch {\n  dropUpdated(dropId: "RHJvcDox") {\n    status\n    stock { available }\n  }\n}\n';
  await page.evaluate((q) => window.setEditorValue('.graphiql-query-editor', q), subscription);

  const result = await runAndReadResult(page);
  assert.deepEqual(result, { data: { dropUpdated: { status: 'LIVE', stock: { available: 41 } } } });

  const wantURL = base.replace(/^http/, 'ws') + '/query';
  assert.equal(socketURL, wantURL, 'the WebSocket goes to /query on the same host');
  assert.deepEqual(received[0], { type: 'connection_init', payload: { Authorization: 'Bearer e2e-ws-token' } });
  const subscribe = received.find((m) => m.type === 'subscribe');
  assert.ok(subscribe, 'a subscribe message was sent');
  assert.equal(subscribe.payload.query, subscription);
});

test('tells subscriptions from queries in the text itself', { timeout: 60_000 }, async (t) => {
  const { page } = await openPlayground(t);
  const cases = [
    ['{ viewer { id } }', null, 'query'],
    ['query Q($id: ID!) { node(id: $id) { id } }', null, 'query'],
    ['mutation { follow(creatorId: "x") { id } }', null, 'mutation'],
    ['subscription { dropUpdated(dropId: "x") { status } }', null, 'subscription'],
    ['# subscription in a comment\n{ viewer { id } }', null, 'query'],
    ['{ creator(handle: "subscription") { id } }', null, 'query'],
    ['"""subscription"""\nquery Q { viewer { id } }', null, 'query'],
    ['fragment F on Drop { id }\nsubscription S { dropUpdated(dropId: "x") { ...F } }', null, 'subscription'],
    ['query A { viewer { id } }\nsubscription B { notificationAdded { id } }', 'B', 'subscription'],
    ['query A { viewer { id } }\nsubscription B { notificationAdded { id } }', 'A', 'query'],
    ['query A($x: Int = 1) @cached { viewer { id } }\nsubscription B { notificationAdded { id } }', 'B', 'subscription'],
  ];
  const got = await page.evaluate(
    (cs) => cs.map(([q, name]) => window.LiveDropsPlayground.scanOperationType(q, name)),
    cases,
  );
  assert.deepEqual(got, cases.map((c) => c[2]));
});
