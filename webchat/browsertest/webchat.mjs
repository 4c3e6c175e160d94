// The web chat in a real browser (Debian's chromium, driven by
// playwright-core from webchat/node_modules; no browser is downloaded).
// webchat/browser_e2e_test.go starts the real chatbox binary with guests
// on, an IRC client and an XMPP client in the room that answer the
// guest, and runs this script with:
//
//   BASE_URL          http://127.0.0.1:PORT (the web listener)
//   ROOM              the room's name (general)
//   NICK              the guest's nickname
//   GUEST_TEXT        what the guest says
//   FIRST_TEXT        a message already in the room before the guest comes
//   REPLIES           the replies to wait for, separated by '|'
//   ACCOUNT, ACCOUNT_PASSWORD  the account holder who logs in afterwards
//   ACCOUNT_TEXT      what the account holder says
//   SHOTS_DIR         where the screenshots go
//   UPLOAD_FILE       an image the guest shares (XEP-0363 through Converse)
//   FILES_HOST        the box's domain, where shared files are served
//                     (https://FILES_HOST:port, resolved to 127.0.0.1)
//   KICK_CUE          what the guest says after sharing; the IRC operator
//                     kicks it then
//   CHROMIUM          the browser (default /usr/bin/chromium)
//
// A guest opens the page, joins with a nickname, sees the room's last
// message (the time from opening the page to that is measured), says
// GUEST_TEXT, sees the replies, shares UPLOAD_FILE and sees it in the
// room, says KICK_CUE and is kicked by an IRC operator (the test's IRC
// client, once the file's link and the cue reached IRC); then, in a fresh browser profile, the
// account holder logs in through the same page, sees the room with its
// history and says ACCOUNT_TEXT. Every request the page makes is recorded: any that is not to
// BASE_URL's host is reported, as are CSP violations. It prints one JSON
// object on stdout; a failure exits non-zero with the step on stderr.
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
const nick = env('NICK');
const guestText = env('GUEST_TEXT');
const firstText = env('FIRST_TEXT');
const replies = env('REPLIES').split('|');
const account = env('ACCOUNT');
const accountPassword = env('ACCOUNT_PASSWORD');
const accountText = env('ACCOUNT_TEXT');
const shots = env('SHOTS_DIR');
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
const uploadFile = env('UPLOAD_FILE');
const filesHost = env('FILES_HOST');
const kickCue = env('KICK_CUE');
const timeout = 20000;
const host = new URL(base).host;

mkdirSync(shots, { recursive: true });
const result = { screenshots: {}, cspViolations: [], foreignRequests: [], requests: 0 };
const profiles = [];
const contexts = [];
let step = 'launch';
let current; // the page in use, for a screenshot of a failure

const open = async () => {
  const profile = mkdtempSync(join(tmpdir(), 'chatbox-chromium-'));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--host-resolver-rules=MAP ${filesHost} 127.0.0.1`],
    ignoreHTTPSErrors: true, // the box's own CA signs the file service's certificate
    viewport: { width: 412, height: 915 }, // a phone
    timeout,
  });
  contexts.push(context);
  context.setDefaultTimeout(timeout);
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content.Security.Policy/i.test(msg.text())) result.cspViolations.push(msg.text());
  });
  page.on('request', (req) => {
    result.requests++;
    const u = new URL(req.url());
    if (!['data:', 'blob:'].includes(u.protocol) && u.host !== host && u.hostname !== filesHost) result.foreignRequests.push(req.url());
  });
  return page;
};
const shot = async (page, name) => {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path });
  result.screenshots[name] = path;
};
const message = (page, text) => page.locator('.chat-msg__text', { hasText: text }).first();

try {
  step = 'guest opens the page';
  let page = current = await open();
  const t0 = Date.now();
  await page.goto(base + '/chat/');
  await page.waitForFunction(() => document.documentElement.dataset.chatbox === 'ready');
  result.readyMs = Date.now() - t0;
  await shot(page, 'entry');
  step = 'guest joins with a nickname';
  await page.fill('#nick', nick);
  await page.click('#guest-form button');
  await page.locator('.chat-textarea').waitFor();
  result.roomMs = Date.now() - t0;
  step = 'guest sees the room\'s last message';
  await message(page, firstText).waitFor();
  result.firstMessageMs = Date.now() - t0;
  step = 'guest speaks';
  await page.locator('.chat-textarea').fill(guestText);
  await page.locator('.chat-textarea').press('Enter');
  await message(page, guestText).waitFor();
  step = 'guest sees the replies';
  for (const r of replies) await message(page, r).waitFor();
  await shot(page, 'guest-room');
  step = 'guest shares an image';
  await page.locator('input.fileupload').setInputFiles(uploadFile);
  await page.locator('converse-chat-message [href*="/upload/"], converse-chat-message [src*="/upload/"]').first().waitFor();
  await shot(page, 'guest-upload');
  await page.locator('.chat-textarea').fill(kickCue); // the IRC operator kicks on this line
  await page.locator('.chat-textarea').press('Enter');
  step = 'guest is kicked by an IRC operator';
  await page.locator('.disconnect-msg', { hasText: /kicked/i }).first().waitFor();
  await shot(page, 'guest-kicked');

  step = 'account holder logs in';
  page = current = await open();
  await page.goto(base + '/chat/');
  await page.waitForFunction(() => document.documentElement.dataset.chatbox === 'ready');
  await page.click('#login-button');
  await page.locator('#converse-login-jid').fill(account);
  await page.locator('#converse-login-password').fill(accountPassword);
  await shot(page, 'login');
  await page.locator('#converse-login-password').press('Enter');
  step = 'account holder sees the room and its history';
  await message(page, guestText).waitFor();
  for (const r of replies) await message(page, r).waitFor();
  step = 'account holder speaks';
  await page.locator('.chat-textarea').fill(accountText);
  await page.locator('.chat-textarea').press('Enter');
  await message(page, accountText).waitFor();
  await shot(page, 'account-room');
  result.ok = true;
} catch (e) {
  result.ok = false;
  result.step = step;
  result.error = String(e?.message ?? e);
  process.stderr.write(`failed at: ${step}: ${result.error}\n`);
  if (current) await shot(current, 'failure').catch(() => {});
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.ok ? 0 : 1);
