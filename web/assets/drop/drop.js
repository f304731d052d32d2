// The live drop page at /drops/{id}: the drop's details from one query, its
// status and stock kept current by the dropUpdated subscription over
// graphql-transport-ws (the vendored graphql-ws client, window.graphqlWs),
// and a buy button that places an order of one unit for a signed-in user.
// The server puts its endpoints in data-* attributes: the page's CSP forbids
// inline scripts.

const TOKEN_KEY = 'livedrops.token';
// How often a failed live connection is retried, at most (ms).
const MAX_RETRY_WAIT = 10_000;
// How often the drop is read again while live updates are unavailable (ms).
const POLL_INTERVAL = 5_000;
// Screen readers hear the stock at most this often while it moves (ms).
const ANNOUNCE_INTERVAL = 1_500;
// Automatic retries of one click whose outcome is unknown (network, 5xx).
const ORDER_RETRIES = 3;

const DROP_QUERY = `query DropPage($id: ID!) {
  drop(id: $id) {
    id title status startsAt endsAt perUserLimit
    product { title priceCents currency }
    creator { displayName handle }
    stock { available reserved sold total }
  }
}`;

const VIEWER_QUERY = `query DropPageViewer { viewer { id handle } }`;

const LOG_IN = `mutation DropPageLogIn($input: LogInInput!) {
  logIn(input: $input) { token user { handle } }
}`;

const LOG_OUT = `mutation DropPageLogOut { logOut }`;

const PLACE_ORDER = `mutation DropPagePlaceOrder($input: PlaceOrderInput!) {
  placeOrder(input: $input) { id status quantity expiresAt }
}`;

const DROP_UPDATED = `subscription DropPageUpdates($dropId: ID!) {
  dropUpdated(dropId: $dropId) { status stock { available reserved sold total } }
}`;

const ORDER_UPDATED = `subscription DropPageOrder($orderId: ID!) {
  orderUpdated(orderId: $orderId) { id status expiresAt }
}`;

const STATUS_TEXT = {
  SCHEDULED: 'Scheduled',
  LIVE: 'Live',
  SOLD_OUT: 'Sold out',
  ENDED: 'Ended',
  CANCELLED: 'Cancelled',
};

// What a buyer is told for each error code the API answers placeOrder with.
const ORDER_ERRORS = {
  SOLD_OUT: 'Sold out: there is nothing left to order.',
  DROP_NOT_LIVE: 'This drop is not on sale right now.',
  LIMIT_EXCEEDED: 'You already hold as many units of this drop as one buyer may.',
  RATE_LIMITED: 'Too many orders in a short time: wait a moment and try again.',
  UNAUTHENTICATED: 'Your session has ended: sign in again.',
  IDEMPOTENCY_KEY_REUSED: 'This order was already sent with different details.',
  FORBIDDEN: 'You may not order from this drop.',
  NOT_FOUND: 'This drop no longer exists.',
  BAD_USER_INPUT: 'The order was refused.',
  PAYMENT_DECLINED: 'The payment was declined.',
  INTERNAL: 'Something went wrong on our side.',
  NETWORK: 'The server could not be reached.',
};

const $ = (id) => {
  const el = document.getElementById(id);
  if (!el) throw new Error('drop page: no #' + id);
  return el;
};

const root = $('drop');
const endpoint = root.dataset.endpoint || '/query';
const subscriptionEndpoint = root.dataset.subscriptionEndpoint || websocketURL(endpoint);
const dropId = dropIdFromPath(window.location.pathname);

const state = {
  token: takeToken(),
  viewer: null, // {id, handle}
  drop: null, // the query's answer
  status: null,
  stock: null, // {available, reserved, sold, total}
  // live: a subscription message has been applied; the query's (older)
  // status and stock are then ignored.
  live: false,
  order: null,
  // pendingKey is the idempotency key of a click whose outcome is unknown:
  // trying again reuses it, so the click cannot order twice.
  pendingKey: null,
  buying: false,
};

// ---- helpers -----------------------------------------------------------

// websocketURL turns the HTTP endpoint into the WebSocket URL on the same
// host: /query on https://host becomes wss://host/query.
function websocketURL(httpEndpoint) {
  const u = new URL(httpEndpoint, window.location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

function dropIdFromPath(path) {
  const rest = path.replace(/^\/drops\//, '');
  try {
    return decodeURIComponent(rest.split('/')[0]);
  } catch {
    return rest;
  }
}

// takeToken reads the token this tab signed in with. A token in the URL is
// never taken (a crafted link would sign this tab in as someone else); one
// found there is only wiped from the address bar.
function takeToken() {
  const hash = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  if (hash.has('token')) {
    hash.delete('token');
    const rest = hash.toString();
    window.history.replaceState(null, '', window.location.pathname + window.location.search + (rest ? '#' + rest : ''));
  }
  try {
    return window.sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token) {
  try {
    if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
    else window.sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage may be off (private modes); the token then lives in memory.
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// backoff is an exponential wait with jitter, capped.
function backoff(attempt, base, cap) {
  return Math.min(cap, base * 2 ** attempt) * (0.5 + Math.random() / 2);
}

// newIdempotencyKey is 128 random bits. crypto.getRandomValues works on
// plain http too, where crypto.randomUUID does not.
function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function formatMoney(minor, currency) {
  try {
    const fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    const digits = fmt.resolvedOptions().maximumFractionDigits;
    return fmt.format(minor / 10 ** digits);
  } catch {
    return (minor / 100).toFixed(2) + ' ' + currency;
  }
}

function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

// formatCountdown shows what is left as [Nd ]H:MM:SS.
function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const clock = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return days > 0 ? `${days}d ${clock}` : clock;
}

// ---- GraphQL over HTTP -------------------------------------------------

class APIError extends Error {
  constructor(code, message, retryable) {
    super(message);
    this.code = code;
    // retryable: the outcome is unknown (nothing or a server fault came
    // back), so the same request may be sent again.
    this.retryable = retryable;
  }
}

async function graphql(query, variables) {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/graphql-response+json, application/json;q=0.9',
  };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  let res;
  try {
    res = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }), cache: 'no-store' });
  } catch {
    throw new APIError('NETWORK', ORDER_ERRORS.NETWORK, true);
  }
  let body;
  try {
    body = await res.json();
  } catch {
    const retryable = res.status >= 500 || res.status === 429;
    throw new APIError('HTTP_' + res.status, `The server answered HTTP ${res.status}.`, retryable);
  }
  if (body.errors && body.errors.length > 0) {
    const e = body.errors[0];
    const code = (e.extensions && e.extensions.code) || 'ERROR';
    throw new APIError(code, e.message || code, code === 'INTERNAL');
  }
  if (!body.data) throw new APIError('ERROR', 'The server answered without data.', false);
  return body.data;
}

// ---- live updates over graphql-transport-ws ----------------------------

const live = {
  client: null,
  stops: [],
  pollTimer: null,
  // failed: the server refused the drop subscription itself.
  failed: false,
};

// startLive (re)opens the WebSocket with the current token and subscribes
// to the drop, and to the order once there is one. Signing in or out starts
// it again, so the connection speaks for whoever is signed in.
function startLive() {
  stopLive();
  if (!window.graphqlWs || !window.graphqlWs.createClient) {
    setConnection('offline', 'Live updates are unavailable.');
    startPolling();
    return;
  }
  setConnection('connecting', 'Connecting to live updates\u2026');
  live.failed = false;
  live.client = window.graphqlWs.createClient({
    url: subscriptionEndpoint,
    // Read at each (re)connection, so a sign-out is honoured on the next one.
    connectionParams: () => (state.token ? { Authorization: 'Bearer ' + state.token } : {}),
    lazy: false,
    keepAlive: 15_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: (retries) => sleep(backoff(retries, 500, MAX_RETRY_WAIT)),
    on: {
      connected: () => {
        if (!live.failed) setConnection('live', 'Updating live');
      },
      closed: (event) => {
        if (!live.client) return;
        // A refused connection_init: the token is no longer good.
        if (event && (event.code === 4401 || event.code === 4403) && state.token) {
          signOut('Your session has ended: sign in again.');
          return;
        }
        if (!live.failed) setConnection('offline', 'Reconnecting\u2026');
      },
    },
  });
  live.stops.push(
    live.client.subscribe(
      { query: DROP_UPDATED, variables: { dropId } },
      {
        next: (result) => {
          if (result.data && result.data.dropUpdated) {
            stopPolling();
            applyLive(result.data.dropUpdated);
          } else if (result.errors) {
            liveFailed(result.errors);
          }
        },
        error: (err) => liveFailed(err),
        complete: () => {},
      },
    ),
  );
  if (state.order) watchOrder(state.order.id);
}

function stopLive() {
  for (const stop of live.stops.splice(0)) stop();
  if (live.client) {
    const c = live.client;
    live.client = null;
    c.dispose();
  }
}

function watchOrder(orderId) {
  if (!live.client || !state.token) return;
  live.stops.push(
    live.client.subscribe(
      { query: ORDER_UPDATED, variables: { orderId } },
      {
        next: (result) => {
          const o = result.data && result.data.orderUpdated;
          if (o && state.order && o.id === state.order.id) {
            state.order = { ...state.order, ...o };
            renderOrder();
          }
        },
        // The order stays as placed; its status is only not followed live.
        error: () => {},
        complete: () => {},
      },
    ),
  );
}

// liveFailed: the server refused the subscription itself (not the
// connection); the page falls back to reading the drop every few seconds.
function liveFailed(err) {
  live.failed = true;
  const errors = Array.isArray(err) ? err : [err];
  const code = errors[0] && errors[0].extensions && errors[0].extensions.code;
  if (code === 'NOT_FOUND') {
    showPageError('This drop does not exist.');
    return;
  }
  setConnection('offline', 'Live updates are unavailable; refreshing every few seconds.');
  startPolling();
}

function startPolling() {
  if (live.pollTimer) return;
  live.pollTimer = setInterval(() => {
    loadDrop().catch(() => {});
  }, POLL_INTERVAL);
}

function stopPolling() {
  if (live.pollTimer) clearInterval(live.pollTimer);
  live.pollTimer = null;
}

function applyLive(update) {
  state.live = true;
  state.status = update.status;
  state.stock = update.stock;
  render();
}

// ---- loading -----------------------------------------------------------

async function loadDrop() {
  const data = await graphql(DROP_QUERY, { id: dropId });
  if (!data.drop) {
    showPageError('This drop does not exist.');
    return;
  }
  state.drop = data.drop;
  // While polling (no live state), the query is the freshest word.
  if (!state.live || live.pollTimer) {
    state.status = data.drop.status;
    state.stock = data.drop.stock;
  }
  render();
}

async function loadViewer() {
  if (!state.token) {
    state.viewer = null;
    return;
  }
  try {
    const data = await graphql(VIEWER_QUERY, {});
    state.viewer = data.viewer;
    if (!state.viewer) signOut('Your session has ended: sign in again.');
  } catch (e) {
    if (e.code === 'UNAUTHENTICATED') signOut('Your session has ended: sign in again.');
    else throw e;
  }
}

// ---- actions -----------------------------------------------------------

async function buy() {
  if (state.buying) return;
  const key = state.pendingKey || newIdempotencyKey();
  state.pendingKey = key;
  state.buying = true;
  $('buy-error').textContent = '';
  $('buy-status').textContent = 'Placing your order\u2026';
  render();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        const data = await graphql(PLACE_ORDER, { input: { dropId, quantity: 1, idempotencyKey: key } });
        state.pendingKey = null;
        state.order = data.placeOrder;
        renderOrder();
        $('buy-status').textContent = `Order placed: ${state.order.status}.`;
        watchOrder(state.order.id);
        return;
      } catch (e) {
        if (e.retryable && attempt < ORDER_RETRIES) {
          $('buy-status').textContent = 'No answer yet; trying again\u2026';
          await sleep(backoff(attempt, 400, 4_000));
          continue;
        }
        // A definite refusal ends the click; an unknown outcome keeps its
        // key for the next try.
        if (!e.retryable) state.pendingKey = null;
        showOrderError(e);
        if (e.code === 'UNAUTHENTICATED') signOut('Your session has ended: sign in again.');
        return;
      }
    }
  } finally {
    state.buying = false;
    render();
  }
}

function showOrderError(e) {
  const text = ORDER_ERRORS[e.code] || e.message;
  $('buy-error').textContent = `${e.code}: ${text}`;
  $('buy-status').textContent = '';
}

async function logIn(event) {
  event.preventDefault();
  const handle = $('login-handle').value.trim();
  const password = $('login-password').value;
  const err = $('login-error');
  err.textContent = '';
  if (!handle || !password) {
    err.textContent = 'Enter your handle and password.';
    return;
  }
  $('login-submit').disabled = true;
  try {
    const data = await graphql(LOG_IN, { input: { handle, password } });
    state.token = data.logIn.token;
    storeToken(state.token);
    state.viewer = data.logIn.user;
    $('login-password').value = '';
    render();
    startLive();
    $('buy').focus();
  } catch (e) {
    err.textContent = e.code === 'UNAUTHENTICATED' || e.code === 'BAD_USER_INPUT' ? 'Wrong handle or password.' : `${e.code}: ${e.message}`;
  } finally {
    $('login-submit').disabled = false;
  }
}

function signOut(message) {
  state.token = null;
  state.viewer = null;
  state.pendingKey = null;
  storeToken(null);
  $('login-error').textContent = message || '';
  render();
  startLive();
}

// ---- rendering ---------------------------------------------------------

function showPageError(text) {
  $('page-error').textContent = text;
  root.setAttribute('aria-busy', 'false');
  if (!state.drop) $('drop-title').textContent = 'Drop not found';
}

function setConnection(kind, text) {
  const el = $('connection');
  el.dataset.state = kind;
  el.textContent = text;
}

const announcer = { last: 0, timer: null, text: '' };

// announce tells screen readers the stock, at most every ANNOUNCE_INTERVAL
// while it moves fast (the last value always gets through), and at once
// when it runs out.
function announce(text, urgent) {
  if (text === announcer.text) return;
  announcer.text = text;
  const now = Date.now();
  const wait = urgent ? 0 : announcer.last + ANNOUNCE_INTERVAL - now;
  if (wait <= 0) {
    clearTimeout(announcer.timer);
    announcer.timer = null;
    announcer.last = now;
    $('stock-announcer').textContent = text;
  } else if (!announcer.timer) {
    announcer.timer = setTimeout(() => {
      announcer.timer = null;
      announcer.last = Date.now();
      $('stock-announcer').textContent = announcer.text;
    }, wait);
  }
}

function render() {
  const d = state.drop;
  if (d) {
    document.title = `${d.title} \u00b7 Live Drops`;
    $('drop-title').textContent = d.title;
    $('product-title').textContent = d.product.title;
    $('creator-name').textContent = d.creator.displayName;
    $('byline').hidden = false;
    $('price').textContent = formatMoney(d.product.priceCents, d.product.currency);
    root.setAttribute('aria-busy', 'false');
  }
  renderStatus();
  renderStock();
  renderBuy();
  renderAccount();
  renderOrder();
}

function renderStatus() {
  const el = $('status');
  el.dataset.status = state.status || '';
  el.textContent = STATUS_TEXT[state.status] || state.status || '\u2026';
  renderCountdown();
}

let countdownTimer = null;

function renderCountdown() {
  const box = $('countdown-box');
  const scheduled = state.status === 'SCHEDULED' && state.drop;
  box.hidden = !scheduled;
  if (!scheduled) {
    clearInterval(countdownTimer);
    countdownTimer = null;
    return;
  }
  const startsAt = new Date(state.drop.startsAt);
  const tick = () => {
    const left = startsAt.getTime() - Date.now();
    const el = $('countdown');
    el.dateTime = state.drop.startsAt;
    el.textContent = left > 0 ? formatCountdown(left) : 'Starting\u2026';
  };
  $('starts-at').textContent = 'Opens ' + formatTime(state.drop.startsAt);
  tick();
  if (!countdownTimer) countdownTimer = setInterval(tick, 250);
}

function renderStock() {
  const s = state.stock;
  if (!s) return;
  const pct = (n) => (s.total > 0 ? (100 * n) / s.total : 0) + '%';
  $('bar-sold').style.width = pct(s.sold);
  $('bar-reserved').style.width = pct(s.reserved);
  $('bar-available').style.width = pct(s.available);
  $('available').textContent = String(s.available);
  $('total').textContent = String(s.total);
  $('stock-available').textContent = String(s.available);
  $('stock-reserved').textContent = String(s.reserved);
  $('stock-sold').textContent = String(s.sold);
  $('stock-total').textContent = String(s.total);
  const soldOut = isSoldOut();
  $('sold-out').hidden = !soldOut;
  announce(soldOut ? 'Sold out.' : `${s.available} of ${s.total} left.`, soldOut);
}

function isSoldOut() {
  if (state.status === 'SOLD_OUT') return true;
  return !!state.stock && state.stock.available === 0 && state.status !== 'CANCELLED';
}

function renderBuy() {
  const btn = $('buy');
  const hint = $('buy-hint');
  let why = '';
  if (!state.drop) why = 'Loading\u2026';
  else if (isSoldOut()) why = 'Sold out.';
  else if (state.status === 'SCHEDULED') why = 'On sale when the drop starts.';
  else if (state.status === 'ENDED') why = 'This drop has ended.';
  else if (state.status === 'CANCELLED') why = 'This drop was cancelled.';
  else if (state.status !== 'LIVE') why = 'Not on sale.';
  else if (!state.token) why = 'Sign in below to buy.';
  btn.disabled = why !== '' || state.buying;
  btn.textContent = state.buying ? 'Ordering\u2026' : state.pendingKey ? 'Try again' : 'Buy one';
  hint.textContent = why || (state.drop ? `Limit ${state.drop.perUserLimit} per buyer.` : '');
}

function renderAccount() {
  const signedIn = !!state.token;
  $('login').hidden = signedIn;
  $('signed-in').hidden = !signedIn;
  $('viewer-handle').textContent = state.viewer ? '@' + state.viewer.handle : '\u2026';
}

function renderOrder() {
  const o = state.order;
  $('order').hidden = !o;
  if (!o) return;
  $('order-id').textContent = o.id;
  $('order-status').textContent = o.status;
  const exp = $('order-expires');
  exp.dateTime = o.expiresAt;
  exp.textContent = formatTime(o.expiresAt);
}

// ---- start -------------------------------------------------------------

$('buy').addEventListener('click', () => {
  buy();
});
$('login').addEventListener('submit', logIn);
$('logout').addEventListener('click', () => {
  // The server ends the session for good; the page forgets it either way.
  if (state.token) graphql(LOG_OUT).catch(() => {});
  signOut('');
});

render();
// The subscription's first message is the current state, so it is opened
// at once, beside the query for the drop's details.
startLive();
Promise.all([loadDrop(), loadViewer()])
  .then(render)
  .catch((e) => showPageError(`The drop could not be loaded (${e.code || 'ERROR'}): ${e.message}`));
