// The web admin in a real browser (Debian's chromium, driven by
// playwright-core; no browser is downloaded). webadmin/browser_e2e_test.go
// starts the real chatbox binary and runs this script with:
//
//   BASE_URL        http://127.0.0.1:PORT (the web admin's listener)
//   SETUP_CODE      the one-time setup code the box logged
//   ADMIN_PASSWORD  the admin password to set
//   ACCOUNT, ACCOUNT_PASSWORD  the account to create on the People page
//   ROOM            the room to create on the Rooms page
//   SHOTS_DIR       where the screenshots go
//   CHROMIUM        the browser (default /usr/bin/chromium)
//
// It goes through the first-run setup, logs out and in again, creates the
// account, an invitation and the room, opens every main page, takes a
// screenshot of each, measures the dashboard's page weight (HTML, CSS and
// JS bytes transferred, cache off) and checks that htmx runs under the
// page's strict CSP (it loads, no CSP violation, the live part refreshes).
// It prints one JSON object on stdout; any failure exits non-zero with
// the step that failed on stderr.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name, def) => {
  const v = process.env[name] ?? def;
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
};
const base = env('BASE_URL');
const code = env('SETUP_CODE');
const adminPassword = env('ADMIN_PASSWORD');
const account = env('ACCOUNT');
const accountPassword = env('ACCOUNT_PASSWORD');
const room = env('ROOM');
const shots = env('SHOTS_DIR');
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
const timeout = 20000;

mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'chatbox-chromium-'));
const result = { screenshots: {}, cspViolations: [], consoleErrors: [] };
let step = 'launch';
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 412, height: 915 }, // a phone: the owner's device
    timeout,
  });
  context.setDefaultTimeout(timeout);
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    (/Content Security Policy/i.test(text) ? result.cspViolations : result.consoleErrors).push(text);
  });
  const shot = async (name) => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    result.screenshots[name] = path;
  };
  const expectPath = async (path) => {
    await page.waitForURL((u) => new URL(u).pathname === path);
  };
  const submit = async (formAction) => {
    await Promise.all([page.waitForNavigation(), page.click(`form[action="${formAction}"] button`)]);
  };

  step = 'first visit goes to setup';
  // "/" is the web chat (webadmin.Config.Home) when the box serves one.
  await page.goto(base + '/admin/');
  await expectPath('/admin/setup');
  step = 'setup';
  await page.fill('#name', 'Browser box');
  await page.fill('#password', adminPassword);
  await page.fill('#password2', adminPassword);
  await page.fill('#code', code);
  await shot('setup');
  await submit('/admin/setup');
  await expectPath('/admin/');

  step = 'log out and in again';
  await submit('/admin/logout');
  await expectPath('/admin/login');
  await page.fill('#password', adminPassword);
  await shot('login');
  await submit('/admin/login');
  await expectPath('/admin/');

  step = 'dashboard weight';
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  // Bytes transferred (headers and body, as encoded on the wire) for the
  // HTML, CSS and JS of one load of the dashboard.
  const measure = async () => {
    const weight = { html: 0, css: 0, js: 0 };
    const types = new Map();
    let docFinished;
    const docDone = new Promise((resolve) => { docFinished = resolve; });
    const onResponse = (e) => types.set(e.requestId, e.type);
    const onFinished = (e) => {
      const kind = { Document: 'html', Stylesheet: 'css', Script: 'js' }[types.get(e.requestId)];
      if (kind) weight[kind] += e.encodedDataLength;
      if (kind === 'html') docFinished();
    };
    cdp.on('Network.responseReceived', onResponse);
    cdp.on('Network.loadingFinished', onFinished);
    await page.goto(base + '/admin/', { waitUntil: 'load' });
    // The document's loadingFinished can reach us after the load event
    // (CDP events are asynchronous): wait for it, 5 s at most.
    await Promise.race([docDone, new Promise((resolve) => setTimeout(resolve, 5000))]);
    cdp.off('Network.responseReceived', onResponse);
    cdp.off('Network.loadingFinished', onFinished);
    weight.total = weight.html + weight.css + weight.js;
    return weight;
  };
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  result.dashboardBytes = await measure(); // a first visit
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  await page.goto(base + '/admin/', { waitUntil: 'load' }); // fills the cache
  result.dashboardBytesCached = await measure(); // a visit after that: the versioned assets come from the cache

  step = 'htmx runs and refreshes the live part';
  result.htmx = await page.evaluate(() => typeof window.htmx === 'object' && window.htmx.version);
  if (result.htmx) {
    const live = await page.waitForResponse((r) => new URL(r.url()).pathname === '/admin/live' && r.status() === 200, { timeout });
    result.liveRefreshed = (await live.text()).includes('id="live"');
    await page.waitForSelector('#live .led'); // the LED panel is there after the swap
  }
  result.ledPanel = await page.locator('#live .leds li').allInnerTexts();
  result.state = await page.locator('#box-state').innerText();
  await shot('dashboard');

  step = 'create the account';
  await page.goto(base + '/admin/people');
  await page.fill('#new-name', account);
  await page.fill('#new-password', accountPassword);
  await submit('/admin/people/create');
  await page.waitForSelector(`text=${account}`);
  await shot('people');

  step = 'make an invitation';
  await submit('/admin/people/invite');
  await page.waitForSelector('svg.qr');
  result.invite = await page.locator('code.uri').innerText();
  await shot('invite');

  step = 'create the room and open the rooms page';
  await page.goto(base + '/admin/rooms');
  await page.fill('#room-name', room);
  await submit('/admin/rooms/create');
  await page.waitForSelector(`text=${room}`);
  await shot('rooms');

  for (const [name, path] of [['settings', '/admin/settings'], ['certificate', '/admin/tls'], ['backup', '/admin/backup'], ['tokens', '/admin/tokens']]) {
    step = `open ${path}`;
    const resp = await page.goto(base + path);
    if (resp.status() !== 200) throw new Error(`${path}: HTTP ${resp.status()}`);
    await shot(name);
  }
  result.ok = true;
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (err) {
  process.stderr.write(`browser test failed at "${step}": ${err.stack || err}\n`);
  process.stdout.write(JSON.stringify({ ...result, ok: false, step, error: String(err) }) + '\n');
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
