// Shared helpers for the browser tests: launch Debian's Chromium through
// playwright-core (which cannot download browsers of its own here), find the
// server under test, and watch what a page fetches and logs.
import { chromium } from 'playwright-core';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Flags that keep Chromium quiet and self-contained: no GPU, no sandbox (we
// run as root), and none of the background traffic a fresh profile starts.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

// launchBrowser starts Chromium headless. Playwright gives every launch a
// fresh temporary user-data dir and removes it on close; use a new context
// per test for fresh cookies and localStorage.
export async function launchBrowser(options = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
    ...options,
  });
}

// baseURL is the server under test, from BASE_URL, without a trailing slash.
export function baseURL() {
  const raw = process.env.BASE_URL;
  if (!raw) {
    throw new Error('BASE_URL is not set: point it at a running server, e.g. BASE_URL=http://127.0.0.1:8080');
  }
  let u;
  try {
    u = new URL(raw);
  } catch (err) {
    throw new Error(`BASE_URL ${JSON.stringify(raw)} is not a URL: ${err.message}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(`BASE_URL ${JSON.stringify(raw)} must be an http:// or https:// URL`);
  }
  return u.href.replace(/\/+$/, '');
}

// screenshotPath names a file for a screenshot, in SCREENSHOT_DIR or the
// system temp dir, so a failing run leaves something to look at.
export function screenshotPath(name) {
  return join(process.env.SCREENSHOT_DIR || tmpdir(), `livedrops-e2e-${name}.png`);
}

// isLoopback says whether a URL stays on this machine. data: and blob: URLs
// never touch the network.
export function isLoopback(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
  );
}

// watchPage records every request and WebSocket a page opens, and every
// error it reports, from the moment it is called.
export function watchPage(page) {
  const seen = {
    requests: [], // {method, url, headers, postData}
    websockets: [], // url
    pageErrors: [], // uncaught exceptions
    consoleErrors: [], // console.error and failed loads, CSP violations among them
  };
  page.on('request', (req) => {
    seen.requests.push({ method: req.method(), url: req.url(), headers: req.headers(), postData: req.postData() });
  });
  page.on('websocket', (ws) => seen.websockets.push(ws.url()));
  page.on('pageerror', (err) => seen.pageErrors.push(String(err && err.stack ? err.stack : err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.consoleErrors.push(msg.text());
  });
  seen.offMachine = () => [...seen.requests.map((r) => r.url), ...seen.websockets].filter((u) => !isLoopback(u));
  return seen;
}
