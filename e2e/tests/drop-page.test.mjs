// The live drop page at BASE_URL/drops/<id>: it must show a drop's
// countdown, status and stock as they change (the dropUpdated subscription
// over graphql-transport-ws), let a signed-in buyer order one unit, show the
// order or the refusal's code, and say SOLD OUT when nothing is left, all
// from the server's own assets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { launchBrowser, baseURL, watchPage, screenshotPath } from '../lib/browser.mjs';

const base = baseURL();
const run = randomBytes(4).toString('hex');
const password = 'e2e-' + randomBytes(8).toString('hex');
let browser;

// gql sends one operation to the API from node, as the bearer of token.
async function gql(query, variables = {}, token = '') {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(base + '/query', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors?.length) {
    const e = body.errors[0];
    const err = new Error(`${e.extensions?.code}: ${e.message}`);
    err.code = e.extensions?.code;
    throw err;
  }
  return body.data;
}

async function signUp(role) {
  const handle = `dp_${role}_${run}`;
  const data = await gql(
    `mutation($input: SignUpInput!) { signUp(input: $input) { token user { id handle } } }`,
    { input: { handle, password, displayName: `Drop page ${role}` } },
  );
  return { handle, token: data.signUp.token, id: data.signUp.user.id };
}

// seller is a creator with one product, provisioned through the API.
async function newSeller() {
  const s = await signUp('seller');
  await gql(`mutation($input: BecomeCreatorInput!) { becomeCreator(input: $input) { id } }`,
    { input: { displayName: 'Night Market', bio: 'Small runs.' } }, s.token);
  const p = await gql(`mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }`,
    { input: { title: 'Night Runner tee', description: 'Glow ink.', priceCents: 3500, currency: 'EUR' } }, s.token);
  s.productId = p.createProduct.id;
  return s;
}

async function scheduleDrop(seller, title, stock, startsIn) {
  const now = Date.now();
  const data = await gql(`mutation($input: ScheduleDropInput!) { scheduleDrop(input: $input) { id status } }`, {
    input: {
      productId: seller.productId, title,
      startsAt: new Date(now + startsIn).toISOString(), endsAt: new Date(now + 3600_000).toISOString(),
      stock, perUserLimit: 1,
    },
  }, seller.token);
  return data.scheduleDrop.id;
}

async function startDrop(seller, id) {
  const data = await gql(`mutation($id: ID!) { startDrop(id: $id) { status } }`, { id }, seller.token);
  assert.equal(data.startDrop.status, 'LIVE');
}

async function placeOrder(buyer, dropId, key) {
  const data = await gql(
    `mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }`,
    { input: { dropId, quantity: 1, idempotencyKey: key } }, buyer.token,
  );
  return data.placeOrder;
}

let seller, buyer, rivals;
// soldOutDrop is the drop the first test sells out, for the second.
let soldOutDrop;

before(async () => {
  browser = await launchBrowser();
  seller = await newSeller();
  buyer = await signUp('buyer');
  rivals = [await signUp('rival1'), await signUp('rival2')];
});

after(async () => {
  await browser?.close();
});

// openDrop opens the page in a fresh context, recording what it fetches and
// the graphql-transport-ws messages the server sends it. A token is put in
// the tab's storage first, as signing in there would (once: signing out
// stays signed out across reloads).
async function openDrop(t, dropId, token = '', hash = '') {
  const context = await browser.newContext({ viewport: { width: 900, height: 1100 } });
  t.after(() => context.close());
  if (token) {
    await context.addInitScript((tok) => {
      if (window.location.pathname.startsWith('/drops/') && !sessionStorage.getItem('e2e.seeded')) {
        sessionStorage.setItem('e2e.seeded', '1');
        sessionStorage.setItem('livedrops.token', tok);
      }
    }, token);
  }
  const page = await context.newPage();
  const seen = watchPage(page);
  seen.frames = [];
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => {
      try {
        seen.frames.push(JSON.parse(f.payload));
      } catch {
        // not JSON: not a protocol message
      }
    });
  });
  const res = await page.goto(`${base}/drops/${dropId}${hash}`, { waitUntil: 'load' });
  assert.equal(res.status(), 200, 'the drop page answers 200');
  return { page, seen };
}

const text = (page, id) => page.locator('#' + id).textContent();

async function waitText(page, id, want, timeout = 15_000) {
  try {
    await page.waitForFunction(
      ([id, want, isPattern]) => {
        const t = document.getElementById(id).textContent.trim();
        return isPattern ? new RegExp(want).test(t) : t === want;
      },
      [id, want instanceof RegExp ? want.source : want, want instanceof RegExp],
      { timeout },
    );
  } catch (err) {
    throw new Error(`#${id} never showed ${want}; it shows ${JSON.stringify(await text(page, id))}: ${err.message}`);
  }
}

// liveStock lists the available counts the server pushed over dropUpdated.
function liveStock(seen) {
  return seen.frames
    .filter((m) => m.type === 'next' && m.payload?.data?.dropUpdated)
    .map((m) => m.payload.data.dropUpdated.stock.available);
}

function placeOrderRequests(seen) {
  return seen.requests
    .filter((r) => r.method === 'POST' && r.url === base + '/query' && /placeOrder/.test(r.postData || ''))
    .map((r) => JSON.parse(r.postData).variables.input);
}

test('shows a drop live: countdown, start, stock moved by others, buying, refusals and SOLD OUT', { timeout: 120_000 }, async (t) => {
  const title = 'Night Runner drop ' + run;
  const dropId = await scheduleDrop(seller, title, 3, 120_000);
  const { page, seen } = await openDrop(t, dropId, buyer.token);

  await waitText(page, 'drop-title', title);
  assert.equal(await text(page, 'product-title'), 'Night Runner tee');
  assert.equal(await text(page, 'creator-name'), 'Night Market');
  await waitText(page, 'status', 'Scheduled');
  await waitText(page, 'countdown', /^[0-9]:[0-5][0-9]:[0-5][0-9]$/);
  assert.ok(await page.locator('#countdown-box').isVisible(), 'the countdown shows while the drop is scheduled');
  await waitText(page, 'available', '3');
  assert.equal(await text(page, 'total'), '3');
  await waitText(page, 'viewer-handle', '@' + buyer.handle);
  assert.ok(await page.locator('#buy').isDisabled(), 'nothing to buy before the start');
  await waitText(page, 'connection', 'Updating live');
  await page.screenshot({ path: screenshotPath('drop-page-scheduled'), fullPage: true });

  // The start reaches the page through the subscription.
  await startDrop(seller, dropId);
  await waitText(page, 'status', 'Live');
  assert.ok(await page.locator('#countdown-box').isHidden(), 'the countdown goes once the drop is live');
  await page.waitForFunction(() => !document.getElementById('buy').disabled, null, { timeout: 10_000 });

  // Another buyer's order, placed from here, moves the stock on the page.
  await placeOrder(rivals[0], dropId, 'rival-' + run);
  await waitText(page, 'available', '2');
  assert.equal(await text(page, 'stock-reserved'), '1');
  assert.ok(liveStock(seen).includes(2), `the new stock came over the WebSocket (saw ${liveStock(seen)})`);

  // Buying: one unit, a fresh idempotency key, the order shown.
  await page.locator('#buy').click();
  await page.locator('#order').waitFor({ state: 'visible', timeout: 15_000 });
  const orderId = await text(page, 'order-id');
  assert.ok(orderId.length > 0, 'the order id is shown');
  await waitText(page, 'order-status', 'PENDING_PAYMENT');
  const expires = await page.locator('#order-expires').getAttribute('datetime');
  assert.ok(Date.parse(expires) > Date.now(), `the order expires in the future (${expires})`);
  await waitText(page, 'available', '1');
  assert.equal(await text(page, 'stock-reserved'), '2');

  // A second click is a new order, refused by the per-user limit of 1.
  await page.locator('#buy').click();
  await waitText(page, 'buy-error', /^LIMIT_EXCEEDED: /);
  const sent = placeOrderRequests(seen);
  assert.equal(sent.length, 2, 'two clicks, two requests');
  assert.ok(sent.every((i) => i.quantity === 1 && i.dropId === dropId), 'each asks for one unit of this drop');
  assert.notEqual(sent[0].idempotencyKey, sent[1].idempotencyKey, 'each click has its own idempotency key');

  // The last unit goes elsewhere: SOLD OUT.
  await placeOrder(rivals[1], dropId, 'rival-' + run);
  await waitText(page, 'available', '0');
  await page.locator('#sold-out').waitFor({ state: 'visible', timeout: 10_000 });
  assert.equal(await text(page, 'sold-out'), 'SOLD OUT');
  await waitText(page, 'status', 'Sold out');
  assert.ok(await page.locator('#buy').isDisabled(), 'nothing left to buy');
  await waitText(page, 'stock-announcer', 'Sold out.');
  // The bar is all reserved once its short transition ends.
  await page.waitForFunction(() => {
    const width = (id) => document.getElementById(id).getBoundingClientRect().width;
    return width('bar-available') === 0 && width('bar-sold') === 0 && width('bar-reserved') > 0;
  }, null, { timeout: 5_000 });

  await page.screenshot({ path: screenshotPath('drop-page'), fullPage: true });

  assert.deepEqual(seen.offMachine(), [], 'no request left this machine');
  assert.deepEqual(seen.pageErrors, [], 'no uncaught errors');
  assert.deepEqual(seen.consoleErrors.filter((m) => /Content Security Policy/i.test(m)), [], 'nothing was blocked by the CSP');
  assert.ok(seen.websockets.every((u) => u === base.replace(/^http/, 'ws') + '/query'), 'the WebSocket goes to /query');

  // Shared with the next test: a sold-out drop.
  soldOutDrop = dropId;
});


test('a visitor sees SOLD OUT from the first state and signs in with the form', { timeout: 60_000 }, async (t) => {
  assert.ok(soldOutDrop, 'the previous test sold a drop out');
  const { page, seen } = await openDrop(t, soldOutDrop);
  await page.locator('#sold-out').waitFor({ state: 'visible', timeout: 15_000 });
  await waitText(page, 'available', '0');
  assert.ok(await page.locator('#login').isVisible(), 'the sign-in form shows to a visitor');

  await page.getByLabel('Handle').fill(buyer.handle);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await waitText(page, 'login-error', 'Wrong handle or password.');

  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await waitText(page, 'viewer-handle', '@' + buyer.handle);
  assert.ok(await page.locator('#login').isHidden(), 'the form goes once signed in');
  const stored = await page.evaluate(() => window.sessionStorage.getItem('livedrops.token'));
  assert.ok(stored && stored.length > 20, 'the token is kept in sessionStorage');
  assert.ok(await page.locator('#buy').isDisabled(), 'still nothing to buy');

  // A reload keeps the session and the state.
  await page.reload({ waitUntil: 'load' });
  await waitText(page, 'viewer-handle', '@' + buyer.handle);
  await page.locator('#sold-out').waitFor({ state: 'visible', timeout: 15_000 });

  assert.deepEqual(seen.offMachine(), [], 'no request left this machine');
  assert.deepEqual(seen.pageErrors, [], 'no uncaught errors');
});

test('a click whose answer is lost is retried with its idempotency key and orders once', { timeout: 60_000 }, async (t) => {
  const dropId = await scheduleDrop(seller, 'Retry drop ' + run, 5, 60_000);
  await startDrop(seller, dropId);
  const { page, seen } = await openDrop(t, dropId, buyer.token);
  await page.waitForFunction(() => !document.getElementById('buy').disabled, null, { timeout: 15_000 });

  // The first placeOrder reaches the server, which orders; its answer is
  // then lost on the way back, as when a connection drops.
  let lost = null;
  await page.route(base + '/query', async (route) => {
    if (!lost && /placeOrder/.test(route.request().postData() || '')) {
      const res = await route.fetch();
      lost = (await res.json()).data.placeOrder;
      await route.abort('connectionreset');
      return;
    }
    await route.continue();
  });

  await page.locator('#buy').click();
  await page.locator('#order').waitFor({ state: 'visible', timeout: 20_000 });
  assert.ok(lost, 'the first answer was intercepted');
  assert.equal(await text(page, 'order-id'), lost.id, 'the retry shows the order the lost answer carried');

  const sent = placeOrderRequests(seen);
  assert.ok(sent.length >= 2, `the click was retried (${sent.length} requests)`);
  assert.ok(sent.every((i) => i.idempotencyKey === sent[0].idempotencyKey), 'every retry of the click reuses its key');
  await waitText(page, 'available', '4');
  assert.equal(await text(page, 'buy-error'), '');
});

test('a token in the link signs nobody in and is wiped from the address bar', { timeout: 60_000 }, async (t) => {
  const dropId = await scheduleDrop(seller, 'Crafted link drop ' + run, 2, 60_000);
  const { page, seen } = await openDrop(t, dropId, '', '#token=' + encodeURIComponent(buyer.token));
  await waitText(page, 'drop-title', 'Crafted link drop ' + run);
  assert.ok(await page.locator('#login').isVisible(), 'the sign-in form shows: the link signed nobody in');
  assert.ok(await page.locator('#signed-in').isHidden(), 'nobody is signed in');
  assert.ok(!page.url().includes('token='), 'the token is wiped from the address bar');
  const sent = seen.requests.filter((r) => (r.headers?.authorization || '') !== '');
  assert.deepEqual(sent, [], 'no request carried the token from the link');
  assert.deepEqual(seen.pageErrors, [], 'no uncaught errors');
});
