// The operators' console: plain JavaScript, no build step. It signs in with an admin token kept in
// sessionStorage and uses cyberhub-client (vendored from clients/js/dist) for everything it says to
// the server: `connectAdmin` for the admin-only `/admin` namespace (token in the handshake, in-band
// refresh, jittered reconnect, `session:ended`) and its typed `AdminApi` for the HTTP calls.
import { connectAdmin, createAdminApi } from '/console/cyberhub-client/admin.js';
import { ApiError } from '/console/cyberhub-client/http.js';

const KEY = 'cyberhub.console.token';
const $ = (id) => document.getElementById(id);
let token = null;
/** The live connection (an `AdminClient`), while signed in. */
let hub = null;
/** The admin HTTP calls, with whatever token is signed in. */
const admin = createAdminApi({ url: '', getToken: () => token });

// --- small helpers -------------------------------------------------------------------------

/** An element with attributes and children; text is always text (nothing is parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'on') Object.entries(v).forEach(([event, fn]) => el.addEventListener(event, fn));
    else if (k === 'class') el.className = v;
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}
const money = (n) => (Number(n) || 0).toFixed(2);
const when = (t) => (t ? new Date(t).toLocaleString() : '–');
const short = (id) => String(id).slice(0, 8);

function toast(text, bad = false) {
  const el = $('toast');
  el.textContent = text;
  el.className = bad ? 'bad' : '';
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

/** The payload of a JWT, unverified: only to word a message before the server is asked. */
function claims(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

/** One HTTP call (a cyberhub-client promise): a refused token (401) signs out. */
async function api(call) {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut(err.envelope?.error === 'token expired' ? 'Your token expired: sign in with a fresh one.' : 'The token was refused: sign in again.');
    }
    throw err;
  }
}

/** Runs an action, reporting its failure as a toast (the envelope's message, not the call's path). */
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err.status !== 401) toast(`${what}: ${err.envelope?.error ?? err.message}`, true);
    return undefined;
  }
}

// --- sign-in --------------------------------------------------------------------------------

async function signIn(candidate) {
  candidate = (candidate || '').trim();
  const error = $('signin-error');
  error.textContent = '';
  const payload = claims(candidate);
  if (!payload) return showSignIn('That is not a token.');
  if (payload.exp && payload.exp * 1000 < Date.now()) return showSignIn('This token has expired: make a new one.');
  if (payload.role !== 'admin') return showSignIn('This is not an admin token: the console needs one made by cyberhub token --role admin.');
  token = candidate;
  let me;
  try {
    me = await api(admin.me());
  } catch (err) {
    if (err.status !== 401) showSignIn(`The server did not accept the token: ${err.envelope?.error ?? err.message}`);
    return;
  }
  if (me.role !== 'admin') return signOut('This is not an admin token.');
  sessionStorage.setItem(KEY, token);
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('signout').hidden = false;
  $('live').hidden = false;
  connectLive();
  route();
}

function showSignIn(message) {
  token = null;
  sessionStorage.removeItem(KEY);
  document.querySelectorAll('.view').forEach((v) => { v.hidden = true; });
  $('nav').hidden = true;
  $('signout').hidden = true;
  $('live').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
}

function signOut(message) {
  const live = hub;
  hub = null; // first: close() reports `ended` to the listeners below, which then ignore it
  live?.close();
  showSignIn(message);
}

// --- live: the /admin namespace -------------------------------------------------------------

function setLive(text, cls) {
  const el = $('live');
  el.textContent = text;
  el.className = `pill ${cls}`;
}

/** Refusals that the console's one token cannot get past: back to the sign-in. */
const REFUSED = {
  forbidden: 'This is not an admin token.',
  token_expired: 'Your token expired: sign in with a fresh one.',
  unauthorized: 'The token was refused: sign in again.',
};

function connectLive() {
  if (hub) hub.close();
  // The client reconnects by itself (jittered backoff, and after a drain) and refreshes the token
  // in band before it expires, asking `getToken` again: a token pasted meanwhile is taken up.
  const live = connectAdmin({ url: '', getToken: () => token });
  hub = live;
  live.connection.subscribe((state) => {
    if (hub !== live) return;
    if (state.status === 'connected') setLive('live', 'up');
    else if (REFUSED[state.reason] || REFUSED[state.error]) signOut(REFUSED[state.reason] || REFUSED[state.error]);
    else if (state.status === 'ended') setLive(`ended (${state.reason})`, 'down');
    else setLive(state.error ? `offline (${state.error})` : 'offline', 'down');
  });
  // The console has no way to get a fresh token: when its token runs out, ask for one.
  live.on('ended', ({ reason }) => {
    if (hub === live && reason === 'token_expired') signOut(REFUSED.token_expired);
  });
  live.on('online', showOnline);
  live.on('payment', showPayment);
}

function showOnline(s) {
  $('online-sockets').textContent = s.sockets;
  $('online-users').textContent = s.users;
  const bus = $('bus');
  bus.textContent = s.bus;
  bus.className = `big ${s.bus}`;
  $('rate-replica').textContent = s.replica;
  $('rates').textContent = `${s.eventsPerSecond.delivered}`;
  $('rates-detail').textContent = `delivered; ${s.eventsPerSecond.published} published`;
  $('lag').textContent = s.lag.meanMs === null ? '–' : `${s.lag.meanMs} ms`;
  $('lag-detail').textContent = s.lag.samples ? `mean; p99 ≤ ${s.lag.p99Ms ?? '>5000'} ms, ${s.lag.samples} events` : 'no remote deliveries';
  const rows = s.replicas.map((r) => h('tr', {}, h('td', {}, r.replica), h('td', { class: 'num' }, r.sockets),
    h('td', { class: 'num' }, r.users), h('td', {}, when(r.updatedAt))));
  if (!s.clusterKnown) rows.push(h('tr', { class: 'empty' }, h('td', { colspan: 4 }, 'Redis unreadable: this replica only.')));
  $('replicas').replaceChildren(...rows);
}

function showPayment(p) {
  const list = $('payments');
  list.querySelector('.empty')?.remove();
  list.prepend(h('tr', { class: 'fresh' }, h('td', {}, when(p.at)),
    h('td', {}, h('a', { href: `#player/${p.userId}`, class: 'mono' }, short(p.userId))),
    h('td', { class: 'mono' }, p.paymentId), h('td', { class: 'num' }, money(p.amount))));
  while (list.children.length > 50) list.lastChild.remove();
}

// --- cases ----------------------------------------------------------------------------------

let editing = null; // the case id being edited, or null for a new one

async function loadCases() {
  const cases = await api(admin.cases());
  const rows = cases.map((c) => {
    const price = h('input', { type: 'number', min: '0.01', step: '0.01', value: money(c.price), 'data-testid': 'price-input' });
    let armed = false;
    const del = h('button', { type: 'button', class: 'danger', 'data-testid': 'case-delete', on: { click: () => attempt('Delete', async () => {
      if (!armed) { armed = true; del.textContent = 'Really delete?'; return; }
      await api(admin.deleteCase(c.id));
      toast(`Deleted ${c.name}`);
      await loadCases();
    }) } }, 'Delete');
    return h('tr', { 'data-case': c.id },
      h('td', {}, c.name),
      h('td', { class: 'small' }, c.items.map((i) => `${i.name} ${Number(i.chance).toFixed(2)} %`).join(' · ')),
      h('td', { class: 'num', 'data-testid': 'case-price-shown' }, money(c.price)),
      h('td', {}, h('div', { class: 'row' }, price, h('button', { type: 'button', 'data-testid': 'price-set', on: { click: () => attempt('Price', async () => {
        await api(admin.setCasePrice(c.id, Number(price.value)));
        toast(`${c.name}: price ${money(price.value)}`);
        await loadCases();
      }) } }, 'Set'))),
      h('td', {}, h('div', { class: 'row' },
        h('button', { type: 'button', 'data-testid': 'case-edit', on: { click: () => openEditor(c) } }, 'Edit'), del)));
  });
  if (!rows.length) rows.push(h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'No cases yet.')));
  $('case-list').replaceChildren(...rows);
}

function itemRow(item = { name: '', rarity: 'common', kind: 'money', value: 1, weight: 1 }) {
  const input = (name, attrs) => h('input', { name, value: item[name], ...attrs, on: { input: preview } });
  const kind = h('select', { name: 'kind', on: { change: preview } },
    ['money', 'skin'].map((k) => h('option', { value: k, selected: item.kind === k }, k)));
  return h('tr', { class: 'item' },
    h('td', {}, input('name', { required: true, maxlength: 100, 'data-testid': 'item-name' })),
    h('td', {}, input('rarity', { required: true, maxlength: 32 })),
    h('td', {}, kind),
    h('td', {}, input('value', { type: 'number', min: 0, step: '0.01', required: true, 'data-testid': 'item-value' })),
    h('td', {}, input('weight', { type: 'number', min: 1, max: 1000000, step: 1, required: true, 'data-testid': 'item-weight' })),
    h('td', { class: 'num', 'data-testid': 'item-chance' }),
    h('td', {}, h('button', { type: 'button', on: { click: (e) => { e.target.closest('tr').remove(); preview(); } } }, '✕')));
}

/** Chances as the server computes them (weight over total weight), updated as the admin types. */
function preview() {
  const rows = [...$('item-rows').querySelectorAll('tr.item')];
  const weights = rows.map((r) => Math.max(0, Math.floor(Number(r.querySelector('[name=weight]').value) || 0)));
  const total = weights.reduce((a, b) => a + b, 0);
  let expected = 0;
  rows.forEach((r, i) => {
    const chance = total ? (weights[i] / total) * 100 : 0;
    expected += (chance / 100) * (Number(r.querySelector('[name=value]').value) || 0);
    const cell = r.querySelector('[data-testid=item-chance]');
    const bar = h('span', { class: 'bar' });
    bar.style.width = `${Math.round(chance * 0.6)}px`; // CSSOM, which the CSP allows (a style attribute it would not)
    cell.replaceChildren(bar, `${chance.toFixed(2)} %`);
  });
  const price = Number($('case-editor').elements.price.value) || 0;
  $('ev').textContent = total
    ? `Expected value of one open: ${money(expected)} for a price of ${money(price)} (${price ? ((expected / price) * 100).toFixed(1) : '–'} % back to players).`
    : 'Add at least one item.';
}

function openEditor(c) {
  editing = c ? c.id : null;
  const form = $('case-editor');
  form.hidden = false;
  $('case-editor-title').textContent = c ? `Edit ${c.name}` : 'New case';
  form.elements.caseName.value = c ? c.name : '';
  form.elements.caseImage.value = c ? c.image : '';
  form.elements.price.value = c ? money(c.price) : '1.00';
  const items = c ? c.items : [undefined];
  $('item-rows').replaceChildren(...items.map((item) => itemRow(item)));
  preview();
  form.elements.caseName.focus();
}

async function saveCase(event) {
  event.preventDefault();
  const form = $('case-editor');
  const items = [...$('item-rows').querySelectorAll('tr.item')].map((r) => ({
    name: r.querySelector('[name=name]').value,
    image: '',
    rarity: r.querySelector('[name=rarity]').value,
    kind: r.querySelector('[name=kind]').value,
    value: Number(r.querySelector('[name=value]').value),
    weight: Number(r.querySelector('[name=weight]').value),
  }));
  const draft = { name: form.elements.caseName.value, image: form.elements.caseImage.value, price: Number(form.elements.price.value), items };
  await attempt('Save', async () => {
    await api(editing ? admin.replaceCase(editing, draft) : admin.createCase(draft));
    toast(`Saved ${draft.name}`);
    form.hidden = true;
    await loadCases();
  });
}

// --- withdrawals ----------------------------------------------------------------------------

/** A list that loads page after page through `nextCursor`; `fetchPage(cursor)` is an AdminApi call. */
function pager(tbodyId, moreId, fetchPage, key, render, empty) {
  let cursor = null;
  const more = $(moreId);
  const load = async (first) => {
    if (first) cursor = null;
    const page = await api(fetchPage(cursor ?? undefined));
    const rows = page[key].map(render);
    if (first) {
      $(tbodyId).replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 6 }, empty))]));
    } else {
      $(tbodyId).append(...rows);
    }
    cursor = page.nextCursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => attempt('Load', () => load(false)));
  return load;
}

const loadWithdrawals = pager('withdrawal-list', 'withdrawals-more', (cursor) => admin.withdrawals({ limit: 50, cursor }), 'withdrawals', (w) => {
  const settle = (status, label, cls) => h('button', { type: 'button', class: cls, 'data-testid': `withdrawal-${status}`, on: { click: () => attempt(label, async () => {
    await api(admin.setInventoryStatus(w.item.id, status));
    toast(`${w.item.item.name}: ${status === 'delivered' ? 'delivered' : 'back to the inventory'}`);
    await loadWithdrawals(true);
  }) } }, label);
  return h('tr', { 'data-item': w.item.id },
    h('td', {}, when(w.requestedAt)),
    h('td', {}, h('a', { href: `#player/${w.userId}`, class: 'mono' }, short(w.userId))),
    h('td', {}, `${w.item.item.name} `, h('span', { class: 'small' }, w.item.item.rarity)),
    h('td', { class: 'num' }, money(w.item.item.value)),
    h('td', {}, h('div', { class: 'row' }, settle('delivered', 'Delivered', 'primary'), settle('owned', 'Back to owned', ''))));
}, 'The queue is empty.');

// --- a player -------------------------------------------------------------------------------

let player = null;
let sessionsTimer = null;

const loadLedger = pager('ledger', 'ledger-more', (cursor) => admin.userTransactions(player, { limit: 20, cursor }), 'transactions', (e) =>
  h('tr', {}, h('td', {}, when(e.createdAt)), h('td', {}, e.kind), h('td', { class: 'num' }, money(e.amount)),
    h('td', { class: 'num' }, money(e.balanceAfter)), h('td', { class: 'small' }, [e.reference, e.reason].filter(Boolean).join(' · '))),
'No ledger rows.');

const loadInventory = pager('inventory', 'inventory-more', (cursor) => admin.userInventory(player, { limit: 20, cursor }), 'items', (i) =>
  h('tr', {}, h('td', {}, when(i.wonAt)), h('td', {}, `${i.item.name} `, h('span', { class: 'small' }, i.item.rarity)),
    h('td', { class: 'num' }, money(i.item.value)), h('td', {}, i.status)),
'No items.');

async function loadUser() {
  const user = await api(admin.user(player));
  $('player-balance').textContent = money(user.balance);
  $('player-version').textContent = `version ${user.balanceVersion}`;
  const blocked = $('player-blocked');
  blocked.textContent = user.blocked ? 'blocked' : 'allowed';
  blocked.className = `big ${user.blocked ? 'down' : 'up'}`;
  $('player-blocked-reason').textContent = user.blocked ? `${user.blockedReason || 'no reason'} · ${when(user.blockedAt)}` : '';
  const button = $('player-block');
  button.textContent = user.blocked ? 'Unblock' : 'Block';
  button.className = user.blocked ? '' : 'danger';
  button.dataset.blocked = user.blocked;
}

async function loadSessions() {
  const { sessions } = await api(admin.userSessions(player));
  const rows = sessions.map((s) => h('tr', { 'data-socket': s.socketId }, h('td', {}, s.replica), h('td', { class: 'mono' }, s.socketId),
    h('td', {}, s.transport), h('td', {}, when(s.connectedAt)), h('td', {}, s.clientIp)));
  $('sessions').replaceChildren(...(rows.length ? rows : [h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'Not connected.'))]));
}

async function openPlayer(id) {
  player = id;
  $('player-id').value = id;
  $('player-fair').href = `#fair/${id}`;
  const shown = await attempt('Player', async () => {
    await loadUser();
    await Promise.all([loadSessions(), loadLedger(true), loadInventory(true)]);
    return true;
  });
  $('player-body').hidden = !shown;
  clearInterval(sessionsTimer);
  // Sessions come and go: keep them current while the view is open.
  if (shown) sessionsTimer = setInterval(() => { if (!$('player').hidden && player === id) loadSessions().catch(() => {}); }, 2000);
}

// --- fairness history -----------------------------------------------------------------------

let fairPlayer = null;
const loadFair = pager('fair-list', 'fair-more', (cursor) => admin.userFairHistory(fairPlayer, { limit: 20, cursor }), 'pairs', (p) =>
  h('tr', {}, h('td', {}, when(p.createdAt)), h('td', { class: 'mono' }, p.serverSeedHash),
    h('td', { class: 'mono' }, p.serverSeed || '(active: revealed at rotation)'), h('td', { class: 'mono' }, p.clientSeed),
    h('td', { class: 'num' }, p.nonce)),
'No seed pairs.');

// --- routing --------------------------------------------------------------------------------

async function route() {
  if (!token) return;
  const [view, arg] = (location.hash.slice(1) || 'overview').split('/');
  const known = ['overview', 'cases', 'withdrawals', 'player', 'fair'];
  const name = known.includes(view) ? view : 'overview';
  document.querySelectorAll('.view').forEach((v) => { v.hidden = v.id !== name; });
  document.querySelectorAll('nav a').forEach((a) => a.classList.toggle('active', a.dataset.view === name || (name === 'fair' && a.dataset.view === 'player')));
  if (name === 'cases') await attempt('Cases', loadCases);
  if (name === 'withdrawals') await attempt('Withdrawals', () => loadWithdrawals(true));
  if (name === 'player' && arg && arg !== player) await openPlayer(arg);
  if (name === 'player' && arg && arg === player) await attempt('Player', () => Promise.all([loadUser(), loadSessions()]));
  if (name === 'fair' && arg) {
    fairPlayer = arg;
    $('fair-player').textContent = arg;
    $('fair-back').href = `#player/${arg}`;
    await attempt('Fairness history', () => loadFair(true));
  }
}

function start() {
  $('signin-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('token').value); });
  $('signout').addEventListener('click', () => signOut('Signed out.'));
  $('case-new').addEventListener('click', () => openEditor(null));
  $('case-cancel').addEventListener('click', () => { $('case-editor').hidden = true; });
  $('item-add').addEventListener('click', () => { $('item-rows').append(itemRow()); preview(); });
  $('case-editor').addEventListener('submit', saveCase);
  $('case-editor').elements.price.addEventListener('input', preview);
  $('withdrawals-refresh').addEventListener('click', () => attempt('Withdrawals', () => loadWithdrawals(true)));
  $('player-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = $('player-id').value.trim();
    if (location.hash === `#player/${id}`) openPlayer(id); else location.hash = `#player/${id}`;
  });
  $('player-kick').addEventListener('click', () => attempt('Kick', async () => {
    const { disconnected } = await api(admin.disconnectUser(player));
    toast(`Kicked: ${disconnected} socket(s) on this replica, the others follow over the bus`);
    setTimeout(() => loadSessions().catch(() => {}), 300);
  }));
  $('player-block').addEventListener('click', () => attempt('Block', async () => {
    const blocked = $('player-block').dataset.blocked !== 'true';
    await api(admin.blockUser(player, { blocked, reason: $('block-reason').value || null }));
    toast(blocked ? 'Blocked: their sessions end' : 'Unblocked');
    await loadUser();
    setTimeout(() => loadSessions().catch(() => {}), 300);
  }));
  window.addEventListener('hashchange', () => {
    const fromFragment = takeFragmentToken();
    if (fromFragment) signIn(fromFragment); else route();
  });

  const saved = takeFragmentToken() || sessionStorage.getItem(KEY);
  if (saved) signIn(saved); else showSignIn('');
}

/** `#token=…` never reaches a server (fragments are not sent); take it and wipe it from the
 *  address bar and the history, so it is not left on screen or in a bookmark. */
function takeFragmentToken() {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromFragment) history.replaceState(null, '', `${location.pathname}${location.search}`);
  return fromFragment;
}

start();
