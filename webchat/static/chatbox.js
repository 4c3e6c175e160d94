// The web chat's start-up: reads the box's settings from the page's JSON
// data block (no inline script: the page's CSP forbids it), lets the
// visitor choose between joining as a guest (a nickname; SASL ANONYMOUS
// on guest.<domain>) and logging in with an account, then starts
// Converse.js in full screen on the box's XMPP WebSocket, joining the
// box's rooms. Nothing is fetched from outside the box.
(function () {
  'use strict';
  const box = JSON.parse(document.getElementById('chatbox-config').textContent);
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';

  // No sponsor footer under the login form: its logos are on the web.
  converse.plugins.add('chatbox', {
    initialize() {
      this._converse.api.elements.define('converse-footer', class extends HTMLElement {});
    },
  });

  const common = {
    websocket_url: scheme + location.host + '/xmpp-websocket',
    discover_connection_methods: false,
    assets_path: box.assetsPath,
    view_mode: 'fullscreen',
    i18n: 'en',
    muc_domain: box.mucDomain,
    locked_muc_domain: 'hidden',
    auto_join_rooms: box.rooms,
    allow_registration: false,
    xmpp_providers_url: '',
    autocomplete_providers_url: '',
    providers_link: '',
    use_system_emojis: true,
    emoji_image_path: box.assetsPath + '/images/',
    sounds_path: box.assetsPath + '/sounds/',
    whitelisted_plugins: ['chatbox'],
    blacklisted_plugins: ['converse-omemo', 'converse-register', 'converse-bosh'],
    muc_show_logs_before_join: true,
    loglevel: 'warn',
  };

  const start = (settings) => {
    document.getElementById('chatbox-entry').remove();
    converse.initialize(Object.assign({}, common, settings));
  };

  const guest = document.getElementById('guest-form');
  if (guest && box.guestDomain) {
    guest.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const nick = document.getElementById('nick').value.trim();
      if (!nick) return;
      start({
        authentication: 'anonymous',
        // The nickname as resource names the guest (its JID and the
        // nick IRC shows) when it is a free valid name; else the box
        // picks guest-xxxxxxxx.
        jid: box.guestDomain + '/' + nick,
        auto_login: true,
        keepalive: false,
        nickname: nick,
        auto_join_rooms: box.rooms.map((jid) => ({ jid, nick })),
      });
    });
  }
  const login = document.getElementById('login-button');
  login.addEventListener('click', () => {
    start({
      authentication: 'login',
      default_domain: box.domain,
      locked_domain: box.domain,
      muc_nickname_from_jid: true,
    });
  });
  // The buttons work once this script runs.
  for (const b of document.querySelectorAll('#chatbox-entry button')) b.disabled = false;
  document.documentElement.dataset.chatbox = 'ready';
})();
