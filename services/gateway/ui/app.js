// OwnYou Home browser UI: one page, screens addressed by the URL fragment,
// data from the JSON API under /api/v1, live updates from /api/v1/events.
// All user data is inserted as text (never as HTML); mail bodies are shown only
// through the server-sanitized /html endpoint inside sandboxed frames.
'use strict';

const state = { csrf: '', view: '', pipeline: null, pipeHistory: [], es: null, feedAgent: '', renderSeq: 0 };

// ---------- helpers ----------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET' && method !== 'HEAD') opt.headers['X-CSRF-Token'] = state.csrf;
  if (body !== undefined) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  let resp;
  try { resp = await fetch(path, opt); } catch (e) { throw new APIError(0, 'network', 'Cannot reach OwnYou Home: ' + e.message); }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!resp.ok) {
    const err = (data && data.error) || {};
    if (resp.status === 401 && path !== '/api/v1/auth/login') { showAuth(false); }
    throw new APIError(resp.status, err.code || 'http_' + resp.status, err.message || (resp.status + ' ' + resp.statusText));
  }
  return data;
}

// missing reports whether an error means "this endpoint is not in this build".
const missing = (e) => e instanceof APIError && e.status === 404 && e.code === 'not_found' && /no such endpoint/.test(e.message);

function fmtDate(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return '';
  const now = new Date();
  return d.toDateString() === now.toDateString() ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleDateString([], { year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric', month: 'short', day: 'numeric' });
}
const pct = (a, b) => (b > 0 ? Math.min(100, Math.round((a / b) * 100)) : 100);
const num = (n) => (n ?? 0).toLocaleString();

function toast(msg, isError) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.style.background = isError ? 'var(--bad)' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 3500);
}

function empty(title, text, ...extra) {
  return h('div', { class: 'empty' }, h('b', { text: title }), text ? h('div', { text }) : null, ...extra);
}
function errorBox(e) {
  return empty('Something went wrong', e.message || String(e));
}
function bar(value, max, cls) {
  return h('div', { class: 'bar ' + (cls || ''), role: 'progressbar', 'aria-valuenow': String(pct(value, max)) }, h('i', { style: 'width:' + pct(value, max) + '%' }));
}
function list(r, ...keys) {
  if (Array.isArray(r)) return r;
  for (const k of keys) if (r && Array.isArray(r[k])) return r[k];
  return [];
}
async function run(btn, fn) {
  btn.disabled = true;
  try { await fn(); } catch (e) { toast(e.message, true); } finally { btn.disabled = false; }
}

// ---------- auth ----------
async function boot() {
  let st;
  try { st = await api('GET', '/api/v1/auth/status'); } catch (e) { document.body.textContent = e.message; return; }
  if (!st.authenticated) { showAuth(st.setup_needed); return; }
  state.csrf = st.csrf_token || '';
  startApp();
}

function showAuth(setup) {
  if (state.es) { state.es.close(); state.es = null; }
  document.getElementById('app').hidden = true;
  document.getElementById('auth').hidden = false;
  document.getElementById('auth-intro').textContent = setup
    ? 'Welcome! Choose the password that protects this home server. You will use it to sign in from any device.'
    : 'Sign in to your home server.';
  document.getElementById('auth-confirm-row').hidden = !setup;
  document.getElementById('auth-password').autocomplete = setup ? 'new-password' : 'current-password';
  document.getElementById('auth-submit').textContent = setup ? 'Create password and continue' : 'Sign in';
  document.getElementById('auth-form').dataset.setup = setup ? '1' : '';
  document.getElementById('auth-password').focus();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('auth-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const setup = !!ev.target.dataset.setup;
    const pw = document.getElementById('auth-password').value;
    const errEl = document.getElementById('auth-error');
    errEl.textContent = '';
    if (setup && pw !== document.getElementById('auth-confirm').value) { errEl.textContent = 'The two passwords differ.'; return; }
    try {
      const r = await api('POST', setup ? '/api/v1/auth/setup' : '/api/v1/auth/login', { password: pw });
      state.csrf = r.csrf_token;
      document.getElementById('auth-password').value = '';
      document.getElementById('auth-confirm').value = '';
      startApp();
    } catch (e) { errEl.textContent = e.message; }
  });
  boot();
});

function startApp() {
  document.getElementById('auth').hidden = true;
  document.getElementById('app').hidden = false;
  connectEvents();
  window.onhashchange = route;
  route();
}

// ---------- live updates ----------
function connectEvents() {
  if (state.es) state.es.close();
  const es = new EventSource('/api/v1/events');
  state.es = es;
  const live = document.getElementById('live');
  es.onopen = () => { live.classList.add('on'); live.title = 'Live updates connected'; };
  es.onerror = () => { live.classList.remove('on'); live.title = 'Live updates reconnecting…'; };
  es.addEventListener('pipeline', (ev) => {
    const p = JSON.parse(ev.data);
    onPipeline(p);
  });
  es.addEventListener('mission', (ev) => {
    const m = JSON.parse(ev.data);
    if (state.view === 'feed') { clearTimeout(connectEvents.t); connectEvents.t = setTimeout(refreshFeed, 400); }
    else if (m.subject === 'missions.created') toast('New mission in your feed');
  });
}

function onPipeline(p) {
  const prev = state.pipeline;
  state.pipeline = p;
  if (prev) {
    const dt = (new Date(p.at) - new Date(prev.at)) / 60000;
    if (dt > 0) {
      const rates = {};
      for (const s of p.stages) {
        const o = prev.stages.find((x) => x.name === s.name);
        rates[s.name] = o ? Math.max(0, (s.processed - o.processed) / dt) : 0;
      }
      state.pipeHistory.push(rates);
      if (state.pipeHistory.length > 40) state.pipeHistory.shift();
    }
  }
  const dl = p.stages.reduce((a, s) => a + (s.dead_letters || 0), 0);
  const badge = document.getElementById('pipe-badge');
  badge.hidden = dl === 0;
  badge.textContent = dl;
  if (state.view === 'pipeline') drawPipeline();
}

// ---------- router ----------
function route() {
  const path = location.hash.replace(/^#\/?/, '').split('?')[0];
  const parts = (path || 'feed').split('/').map(decodeURIComponent);
  render(parts[0], parts.slice(1));
}

async function render(view, args, quiet) {
  const views = { feed: viewFeed, profile: viewProfile, mail: viewMail, search: viewSearch, pipeline: viewPipeline, sources: viewSources, settings: viewSettings };
  if (!views[view]) view = 'feed';
  state.view = view;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === view);
  const main = document.getElementById('view');
  const seq = ++state.renderSeq;
  const box = h('div');
  if (!quiet) main.replaceChildren(h('p', { class: 'muted', text: 'Loading…' }));
  try { await views[view](box, args || []); } catch (e) { box.replaceChildren(errorBox(e)); }
  if (seq === state.renderSeq) { main.replaceChildren(box); if (!quiet) main.focus({ preventScroll: true }); }
}

// ---------- feed ----------
const RATINGS = [['meh', '😐', 'Meh'], ['like', '🙂', 'Like'], ['love', '😍', 'Love']];

async function loadMissions() {
  const q = state.feedAgent ? '?agent=' + encodeURIComponent(state.feedAgent) : '';
  return list(await api('GET', '/api/v1/missions' + q), 'missions', 'items');
}

async function viewFeed(box) {
  box.append(h('h1', { text: 'Your missions' }));
  let missions;
  try {
    missions = await loadMissions();
  } catch (e) {
    if (missing(e)) { box.append(empty('Missions are not available yet', 'The agents have not been installed in this build. Your mail is still imported and searchable.')); return; }
    throw e;
  }
  box.append(agentChips(missions));
  if (!missions.length) {
    box.append(await feedEmpty());
    return;
  }
  const grid = h('div', { class: 'cards', id: 'feed-cards' });
  syncCards(grid, missions);
  box.append(grid);
}

// feedEmpty says why the feed is empty: nothing imported yet, mail still on
// its way through the pipeline (n of m), a stage blocked (with its fix), or
// nothing in the mail that needs the user now.
async function feedEmpty() {
  let p = state.pipeline;
  try { if (!p) { p = await api('GET', '/api/v1/pipeline'); onPipeline(p); } } catch (_) { /* fall through to the plain text */ }
  const stages = (p && p.stages) || [];
  const blocked = stages.find((s) => s.state === 'blocked' || s.state === 'stalled' || s.state === 'paused');
  const last = stages[stages.length - 1];
  const total = stages.length ? stages[0].processed : 0;
  let el;
  if (p && total === 0 && !(stages[0] && stages[0].pending)) {
    el = empty('Nothing imported yet', 'Connect a mail account or upload an mbox; cards appear here once the agents have read it.',
      h('p', {}, h('a', { href: '#/sources', text: 'Add mail' })));
  } else if (blocked) {
    el = empty('Your mail is waiting at the ' + blocked.name + ' stage', blocked.detail || '', blocked.action ? h('p', {}, actionControl(blocked.action)) : null,
      h('p', {}, h('a', { href: '#/pipeline', text: 'Open the pipeline' })));
  } else if (last && last.processed < last.total) {
    el = empty('Still reading your mail', 'The agents have read ' + num(last.processed) + ' of ' + num(last.total) + ' emails; cards appear as they find something.',
      h('p', {}, h('a', { href: '#/pipeline', text: 'Watch the pipeline' })));
  } else {
    el = empty('No missions right now', 'The agents have read all ' + num(total) + ' emails and found nothing that needs you now: no trip, booking, order or renewal coming up. New mail is read as it arrives.');
  }
  el.id = 'feed-empty';
  return el;
}

// actionControl is a stage's fix: a link to a screen, or a button calling the API.
function actionControl(a) {
  if (a.href) return h('a', { class: 'button', href: a.href, text: a.label });
  const b = h('button', { class: 'small primary', text: a.label });
  b.onclick = () => run(b, async () => { await api(a.method, a.path); toast(a.label + ': done'); onPipeline(await api('GET', '/api/v1/pipeline')); });
  return b;
}

function agentChips(missions) {
  const agents = [...new Set(missions.map((m) => m.agent).filter(Boolean))];
  if (state.feedAgent && !agents.includes(state.feedAgent)) agents.push(state.feedAgent);
  const chips = h('div', { class: 'row', id: 'feed-agents', style: 'margin-bottom:.8rem' });
  chips.dataset.agents = agents.join(',');
  if (!agents.length) return chips;
  chips.append(h('span', { class: 'muted small', text: 'Agent:' }));
  for (const a of ['', ...agents]) {
    chips.append(h('span', { class: 'chip' + (state.feedAgent === a ? ' on' : ''), role: 'button', tabindex: '0', text: a || 'All',
      onclick: () => { state.feedAgent = a; render('feed'); } }));
  }
  return chips;
}

// refreshFeed brings the feed on screen up to date after a live update without
// drawing it anew: a card that did not change keeps its element (an open
// "Why this mission?" list, focus, a click on its way), a changed card is
// redrawn where it is, new cards appear and gone ones leave. It never changes
// the screen: if the user has moved on, it does nothing.
async function refreshFeed() {
  if (state.view !== 'feed') return;
  const grid = document.getElementById('feed-cards');
  const chips = document.getElementById('feed-agents');
  if (!grid || !chips) { render('feed', [], true); return; }
  const seq = (refreshFeed.seq = (refreshFeed.seq || 0) + 1);
  let missions;
  try { missions = await loadMissions(); } catch (_) { return; /* the next update tries again */ }
  // A slower, older answer must not bring back a card dismissed since.
  if (seq !== refreshFeed.seq || state.view !== 'feed' || !grid.isConnected) return;
  if (!missions.length) { render('feed', [], true); return; }
  const fresh = agentChips(missions);
  if (fresh.dataset.agents !== chips.dataset.agents) chips.replaceWith(fresh);
  syncCards(grid, missions);
}

// syncCards makes grid hold one card per mission, in order, reusing the
// elements of cards whose content is unchanged (the rank score aside).
function syncCards(grid, missions) {
  const old = new Map([...grid.children].map((c) => [c.dataset.id, c]));
  const next = missions.map((m) => {
    const sig = JSON.stringify({ ...m, score: undefined });
    const prev = old.get(m.id);
    if (prev && prev.sig === sig) return prev;
    const card = missionCard(m, !!prev && !prev.querySelector('.evidence').hidden);
    card.sig = sig;
    return card;
  });
  next.forEach((card, i) => { if (grid.children[i] !== card) grid.insertBefore(card, grid.children[i] || null); });
  while (grid.children.length > next.length) grid.lastElementChild.remove();
}

// missionCard draws one card; evidenceOpen shows its "Why this mission?" list
// at once (a redrawn card keeps the list the user had opened).
function missionCard(m, evidenceOpen) {
  const card = h('article', { class: 'card mission', 'data-id': m.id });
  const evBox = h('div', { class: 'evidence', hidden: true });
  const hearts = h('div', { class: 'hearts row', role: 'group', 'aria-label': 'How useful is this?' });
  for (const [val, emo, label] of RATINGS) {
    const b = h('button', { class: m.rating === val ? 'on' : '', title: label, 'aria-label': label, 'data-rating': val, text: emo });
    b.onclick = () => run(b, async () => {
      await api('POST', '/api/v1/missions/' + encodeURIComponent(m.id) + '/feedback', { kind: 'rate', rating: val });
      m.rating = val;
      for (const x of hearts.children) x.classList.toggle('on', x.dataset.rating === val);
      toast('Thanks — noted “' + label + '”');
    });
    hearts.append(b);
  }
  const actions = h('div', { class: 'row' });
  const acts = [m.primary_action, ...(m.secondary_actions || [])].filter(Boolean);
  acts.forEach((a, i) => {
    const label = a.label || a.kind;
    const b = h('button', { class: i === 0 ? 'primary small' : 'small', text: label });
    b.onclick = () => run(b, async () => {
      const r = await api('POST', '/api/v1/missions/' + encodeURIComponent(m.id) + '/actions', { action: i }) || {};
      if (r.email_url) { location.hash = '#/mail/' + encodeURIComponent(r.email_url.split('/').pop()); return; }
      if (r.search_url) { location.hash = '#/search?q=' + encodeURIComponent(new URL(r.search_url, location.origin).searchParams.get('q') || ''); return; }
      if (r.ics) {
        const url = URL.createObjectURL(new Blob([r.ics], { type: 'text/calendar' }));
        const dl = h('a', { href: url, download: (m.title || 'event').replace(/[^\w -]/g, '') + '.ics' });
        document.body.append(dl); dl.click(); dl.remove(); URL.revokeObjectURL(url);
      }
      toast(label + ' — done');
    });
    actions.append(b);
  });
  const details = h('dl', { class: 'small', style: 'margin:0;display:grid;grid-template-columns:auto 1fr;gap:.1rem .6rem' });
  for (const d of m.details || []) details.append(h('dt', { class: 'muted', text: d.label }), h('dd', { style: 'margin:0', text: d.value }));
  const why = h('button', { class: 'why', text: 'Why this mission?' });
  why.onclick = () => run(why, async () => {
    if (!evBox.hidden) { evBox.hidden = true; return; }
    let ev = Array.isArray(m.evidence) ? m.evidence : [];
    if (!ev.length) {
      try { const d = await api('GET', '/api/v1/missions/' + encodeURIComponent(m.id)); ev = list(d.evidence || (d.mission && d.mission.evidence) || []); } catch (_) { /* shown as none */ }
    }
    evBox.replaceChildren(evidenceList(ev));
    evBox.hidden = false;
  });
  // Snooze (until tomorrow morning) and dismiss take the card out of the feed.
  const later = (kind, label, body) => {
    const b = h('button', { class: 'small ' + kind, text: label });
    b.onclick = () => run(b, async () => {
      await api('POST', '/api/v1/missions/' + encodeURIComponent(m.id) + '/feedback', { kind, ...body });
      card.remove();
      toast(kind === 'snooze' ? 'Snoozed until tomorrow' : 'Dismissed');
    });
    return b;
  };
  const tomorrow = new Date(); tomorrow.setDate(tomorrow.getDate() + 1); tomorrow.setHours(8, 0, 0, 0);
  card.append(
    h('div', { class: 'row' }, h('span', { class: 'tag', text: m.agent || 'agent' }), m.kind ? h('span', { class: 'muted small', text: m.kind }) : null,
      h('span', { class: 'spacer' }), m.urgency > 0 ? h('span', { class: 'tag warn', text: 'urgency ' + m.urgency }) : null),
    h('h3', { text: m.title || '(untitled)' }),
    m.summary ? h('p', { class: 'summary', style: 'margin:0', text: m.summary }) : null,
    details.children.length ? details : null,
    actions.children.length ? actions : null,
    h('div', { class: 'row' }, hearts, h('span', { class: 'spacer' }), later('snooze', 'Snooze', { until: tomorrow.toISOString() }), later('dismiss', 'Dismiss', {}), why),
    evBox);
  if (evidenceOpen) why.onclick();
  return card;
}

function evidenceList(ev) {
  if (!ev.length) return h('p', { class: 'muted', text: 'No evidence was recorded for this mission.' });
  const ul = h('ul', { style: 'padding-left:1.1rem;margin:.2rem 0' });
  for (const e of ev) {
    const id = typeof e === 'string' ? e : (e.email_id || e.id);
    const label = typeof e === 'string' ? e : (e.subject || e.title || e.email_id || 'email');
    ul.append(h('li', {}, id ? h('a', { href: '#/mail/' + encodeURIComponent(id), class: 'evidence-link', text: label }) : h('span', { text: label }),
      e.excerpt || e.reason || e.snippet ? h('div', { class: 'muted small', text: e.excerpt || e.reason || e.snippet }) : null));
  }
  return h('div', {}, h('b', { class: 'small', text: 'Based on these emails:' }), ul);
}

// ---------- profile ----------
async function viewProfile(box) {
  box.append(h('h1', { text: 'What your mail says about you' }));
  let p;
  try { p = await api('GET', '/api/v1/profile'); } catch (e) {
    if (missing(e)) { box.append(empty('The profile is not available yet', 'The classifier has not been installed in this build.')); return; }
    throw e;
  }
  const items = list(p, 'categories', 'items', 'profile');
  const sections = {};
  const add = (sec, arr) => { for (const it of arr || []) (sections[sec] = sections[sec] || []).push(it); };
  if (items.length) for (const it of items) add(it.section || it.taxonomy || 'Interests', [it]);
  for (const [k, label] of [['interests', 'Interests'], ['purchase_intent', 'Purchase intent'], ['demographics', 'Demographics']]) if (p && Array.isArray(p[k])) add(label, p[k]);
  if (p && p.sections && typeof p.sections === 'object') for (const [k, v] of Object.entries(p.sections)) add(k, v);
  if (!Object.keys(sections).length) { box.append(empty('Nothing learned yet', 'Your profile fills in as mail is classified. Everything stays on this server.')); return; }
  box.append(h('p', { class: 'muted', text: 'Confidence grows with evidence. Dispute anything that is wrong — it will no longer be used for missions.' }));
  for (const [sec, arr] of Object.entries(sections)) {
    arr.sort((a, b) => (b.confidence || 0) - (a.confidence || 0));
    const card = h('section', { class: 'card' }, h('h2', { style: 'margin-top:0', text: titleCase(sec) }));
    for (const it of arr) card.append(profileRow(it));
    box.append(card);
  }
}
function titleCase(s) { return String(s).replace(/[_-]/g, ' ').replace(/^\w/, (c) => c.toUpperCase()); }

function profileRow(it) {
  const conf = Math.max(0, Math.min(1, it.confidence || 0));
  const name = it.path || it.name || it.label || it.category_id || it.id;
  const row = h('div', { style: 'padding:.5rem 0;border-bottom:1px solid var(--line)' });
  const evBox = h('div', { class: 'evidence', hidden: true });
  const dispute = h('button', { class: 'small', text: it.disputed ? 'Disputed' : 'Not me', disabled: !!it.disputed });
  dispute.onclick = () => run(dispute, async () => {
    await api('POST', '/api/v1/profile/' + encodeURIComponent(it.taxonomy) + '/' + encodeURIComponent(it.category_id) + '/dispute', { disputed: true });
    dispute.textContent = 'Disputed'; dispute.disabled = true; toast('Removed from your profile');
  });
  const evBtn = h('button', { class: 'small', text: 'Evidence (' + (it.evidence_count ?? (it.evidence || []).length) + ')' });
  evBtn.onclick = () => { evBox.replaceChildren(evidenceList(Array.isArray(it.evidence) ? it.evidence : [])); evBox.hidden = !evBox.hidden; };
  row.append(
    h('div', { class: 'row' }, h('b', { text: name }), it.disputed ? h('span', { class: 'tag bad', text: 'disputed' }) : null, h('span', { class: 'spacer' }),
      h('span', { class: 'muted small', text: Math.round(conf * 100) + '%' })),
    confidenceSVG(conf),
    h('div', { class: 'row small' }, it.last_evidence_at ? h('span', { class: 'muted', text: 'last seen ' + fmtDate(it.last_evidence_at) }) : null, h('span', { class: 'spacer' }), evBtn, dispute),
    evBox);
  return row;
}
function confidenceSVG(c) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 100 6'); svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('style', 'width:100%;height:8px;margin:.25rem 0');
  svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', 'confidence ' + Math.round(c * 100) + '%');
  const bg = document.createElementNS(ns, 'rect'); bg.setAttribute('width', '100'); bg.setAttribute('height', '6'); bg.setAttribute('rx', '3'); bg.setAttribute('fill', 'var(--line)');
  const fg = document.createElementNS(ns, 'rect'); fg.setAttribute('width', String(c * 100)); fg.setAttribute('height', '6'); fg.setAttribute('rx', '3');
  fg.setAttribute('fill', c >= 0.7 ? 'var(--ok)' : c >= 0.4 ? 'var(--accent)' : 'var(--warn)');
  svg.append(bg, fg);
  return svg;
}

// ---------- mail ----------
async function viewMail(box, args) {
  if (args[0]) return viewReader(box, args[0]);
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const q = h('input', { type: 'search', placeholder: 'Filter by subject or sender', value: params.get('q') || '', 'aria-label': 'Filter mail' });
  const form = h('form', { class: 'row', style: 'margin-bottom:.8rem', onsubmit: (ev) => { ev.preventDefault(); location.hash = '#/mail' + (q.value ? '?q=' + encodeURIComponent(q.value) : ''); render('mail'); } },
    h('div', { style: 'flex:1' }, q), h('button', { type: 'submit', text: 'Filter' }));
  box.append(h('h1', { text: 'Mail' }), form);
  const lst = h('div', { class: 'list', id: 'mail-list' });
  const more = h('button', { text: 'Load more', hidden: true });
  let cursor = '';
  const load = async () => {
    const qs = new URLSearchParams({ limit: '50' });
    if (params.get('q')) qs.set('q', params.get('q'));
    if (cursor) qs.set('cursor', cursor);
    const page = await api('GET', '/api/v1/emails?' + qs);
    for (const e of page.emails) lst.append(mailItem(e));
    cursor = page.next_cursor || '';
    more.hidden = !cursor;
    return page.emails.length;
  };
  more.onclick = () => run(more, load);
  const n = await load();
  if (!n) { box.append(empty(params.get('q') ? 'No mail matches' : 'No mail yet', params.get('q') ? 'Try other words.' : 'Connect an account or upload an mbox in Sources.', params.get('q') ? null : h('p', {}, h('a', { href: '#/sources', text: 'Go to Sources' })))); return; }
  box.append(lst, h('p', { style: 'text-align:center' }, more));
}

// mailItem is one line of a mail list: sender, date, subject and snippet;
// snippet (nodes) replaces the plain one and extra adds a last line.
function mailItem(e, snippet, extra) {
  return h('a', { class: 'item', href: '#/mail/' + encodeURIComponent(e.id || e.email_id) },
    h('div', { class: 'meta' }, h('span', { class: 'from', text: e.from_name || e.from_addr || '(unknown sender)' }), h('span', { text: fmtDate(e.sent_at || e.date || e.ingested_at) })),
    h('div', { class: 'subj', text: e.subject || '(no subject)' }),
    h('div', { class: 'snip' }, ...(snippet || [e.snippet || ''])),
    extra || null);
}

async function viewReader(box, id) {
  const e = await api('GET', '/api/v1/emails/' + encodeURIComponent(id));
  const frame = h('iframe', { class: 'mail', sandbox: 'allow-popups allow-popups-to-escape-sandbox', referrerpolicy: 'no-referrer', title: 'Email body', id: 'mail-frame' });
  let images = false;
  try { images = !!(await api('GET', '/api/v1/settings')).remote_images; } catch (_) { /* default: blocked */ }
  const imgBtn = h('button', { class: 'small', text: images ? 'Block remote images' : 'Show remote images' });
  const load = async () => {
    const resp = await fetch('/api/v1/emails/' + encodeURIComponent(id) + '/html' + (images ? '?images=1' : ''), { credentials: 'same-origin' });
    if (!resp.ok) throw new APIError(resp.status, 'html', 'Could not load the message body');
    frame.srcdoc = await resp.text();
  };
  imgBtn.onclick = () => run(imgBtn, async () => { images = !images; imgBtn.textContent = images ? 'Block remote images' : 'Show remote images'; await load(); });
  frame.addEventListener('load', () => {
    // The frame is sandboxed without same-origin, so its height cannot be read; give long mail room.
    frame.style.height = Math.max(420, Math.min(2400, (e.body_html || e.body_text || '').length / 4)) + 'px';
  });
  const cats = h('div', { class: 'row' });
  for (const c of e.classifications || []) {
    cats.append(h('span', { class: 'tag', title: (c.evidence || '') + (c.backend ? ' · ' + c.backend : ''), text: (c.name || c.category_id) + ' ' + Math.round((c.confidence || 0) * 100) + '%' }));
  }
  const stages = h('div', { class: 'row small' });
  for (const s of e.stages || []) stages.append(h('span', { class: 'tag ' + (s.status === 'done' ? 'ok' : 'bad'), title: s.error || '', text: s.stage + ': ' + s.status }));
  box.append(
    h('p', {}, h('a', { href: '#/mail', text: '← All mail' })),
    h('div', { class: 'card' },
      h('h1', { style: 'margin:0 0 .4rem', id: 'mail-subject', text: e.subject || '(no subject)' }),
      h('div', { class: 'muted small' }, h('b', { text: e.from_name || e.from_addr }), e.from_name ? ' <' + e.from_addr + '>' : '', ' · ', new Date(e.sent_at || e.ingested_at).toLocaleString()),
      (e.to || []).length ? h('div', { class: 'muted small', text: 'To: ' + e.to.join(', ') }) : null,
      h('div', { style: 'margin-top:.6rem' }, cats.children.length ? cats : h('span', { class: 'muted small', text: 'Not classified yet.' })),
      stages.children.length ? h('div', { style: 'margin-top:.4rem' }, stages) : null,
      (e.attachments || []).length ? h('div', { class: 'small muted', style: 'margin-top:.4rem', text: '📎 ' + e.attachments.map((a) => a.name).join(', ') }) : null,
      h('div', { class: 'row', style: 'margin-top:.6rem' }, h('span', { class: 'muted small', text: 'Remote images are blocked to protect your privacy.' }), h('span', { class: 'spacer' }), imgBtn,
        h('a', { href: '/api/v1/emails/' + encodeURIComponent(id) + '/raw', download: id + '.eml', class: 'small', text: 'Download original' }))),
    frame);
  await load();
}

// ---------- search ----------
async function viewSearch(box) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const q = h('input', { type: 'search', id: 'search-q', placeholder: 'Search your mail by meaning, e.g. “flight to Lisbon”', value: params.get('q') || '', 'aria-label': 'Search' });
  const from = h('input', { type: 'text', placeholder: 'From (optional)', value: params.get('from') || '' });
  const after = h('input', { type: 'date', value: params.get('after') || '', 'aria-label': 'After' });
  const before = h('input', { type: 'date', value: params.get('before') || '', 'aria-label': 'Before' });
  const form = h('form', { class: 'card', onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    if (q.value) p.set('q', q.value);
    if (from.value) p.set('from', from.value);
    if (after.value) p.set('after', after.value);
    if (before.value) p.set('before', before.value);
    location.hash = '#/search?' + p;
  } }, h('div', { class: 'row' }, h('div', { style: 'flex:1;min-width:200px' }, q), h('button', { class: 'primary', type: 'submit', text: 'Search' })),
  h('div', { class: 'row', style: 'margin-top:.5rem' }, h('div', { style: 'flex:2;min-width:140px' }, from), h('div', { style: 'flex:1' }, after), h('div', { style: 'flex:1' }, before)));
  box.append(h('h1', { text: 'Search' }), form);
  if (!params.get('q')) { box.append(empty('Search everything you have received', 'Hybrid search combines meaning and exact words. Nothing leaves this server.')); return; }
  const results = h('div', { class: 'list', id: 'search-results' });
  let hits, note = '', searchWarnings = [];
  try {
    const sr = await api('GET', '/api/v1/search?' + params);
    hits = list(sr, 'hits', 'results', 'emails');
    searchWarnings = sr.warnings || [];
  } catch (e) {
    if (!missing(e)) throw e;
    note = 'Semantic search is not installed in this build; showing subject and sender matches.';
    hits = (await api('GET', '/api/v1/emails?limit=50&q=' + encodeURIComponent(params.get('q')) + (params.get('from') ? '&from=' + encodeURIComponent(params.get('from')) : ''))).emails;
  }
  if (note) box.append(h('p', { class: 'muted small', text: note }));
  for (const w of (searchWarnings || [])) box.append(h('p', { class: 'muted small', text: '⚠ ' + w }));
  if (!hits.length) { box.append(empty('Nothing found', 'Try fewer or different words.')); return; }
  for (const r of hits) results.append(r.email_id ? searchItem(r) : mailItem(r));
  box.append(h('p', { class: 'muted small', text: hits.length + ' results' }), results);
}

// searchItem is one search hit: the mail's line with the snippet's matched
// words marked, and which retrievers found it (exact words,
// meaning, or both), ranks in the tooltip.
const FOUND_BY = { keyword: ['words', 'keyword_rank'], semantic: ['meaning', 'semantic_rank'] };
function searchItem(r) {
  const found = h('div', { class: 'row small muted found-by' }, h('span', { text: 'found by' }));
  for (const x of r.retrievers || []) {
    const [label, rank] = FOUND_BY[x] || [x, ''];
    found.append(h('span', { class: 'tag', 'data-retriever': x, title: r[rank] ? x + ' rank ' + r[rank] : x, text: label }));
  }
  return mailItem(r, markedText(r.snippet_html, r.snippet), found);
}

// markedText turns the server's escaped snippet with <mark> tags into nodes
// without handing it to the page as markup: it is parsed in an inert
// document (no scripts, no loads) and only its text and <mark>s are copied.
function markedText(html, plain) {
  if (!html) return [plain || ''];
  const root = new DOMParser().parseFromString(html, 'text/html').body;
  return [...root.childNodes].map((n) => (n.nodeName === 'MARK' ? h('mark', { text: n.textContent }) : n.textContent));
}

// ---------- pipeline ----------
async function viewPipeline(box) {
  box.append(h('h1', { text: 'Pipeline' }), h('div', { id: 'pipe-stages' }), h('div', { id: 'pipe-dl' }));
  if (!state.pipeline) onPipeline(await api('GET', '/api/v1/pipeline'));
  drawPipeline(box);
  await drawDeadLetters(box);
}

function drawPipeline(root) {
  const host = (root || document).querySelector('#pipe-stages');
  if (!host || !state.pipeline) return;
  const grid = h('div', { class: 'cards' });
  for (const s of state.pipeline.stages) {
    const done = s.processed >= s.total && s.pending === 0;
    const rate = state.pipeHistory.length ? state.pipeHistory[state.pipeHistory.length - 1][s.name] || 0 : 0;
    const ctrl = h('div', { class: 'row' });
    if (s.controllable) {
      const pb = h('button', { class: 'small', text: s.paused ? 'Resume' : 'Pause' });
      pb.onclick = () => run(pb, async () => { await api('POST', '/api/v1/pipeline/' + s.name + (s.paused ? '/resume' : '/pause')); s.paused = !s.paused; drawPipeline(); toast(s.name + (s.paused ? ' paused' : ' resumed')); });
      const rm = h('button', { class: 'small', text: 'Reprocess missing' });
      rm.onclick = () => run(rm, async () => { const r = await api('POST', '/api/v1/pipeline/' + s.name + '/reprocess?mode=missing'); toast(r.queued + ' emails queued for ' + s.name); });
      const ra = h('button', { class: 'small', text: 'Reprocess all' });
      ra.onclick = () => run(ra, async () => { if (!confirm('Run every email through ' + s.name + ' again?')) return; const r = await api('POST', '/api/v1/pipeline/' + s.name + '/reprocess?mode=all'); toast(r.queued + ' emails queued for ' + s.name); });
      ctrl.append(pb, rm, ra);
    }
    const st = s.state || (s.stalled ? 'stalled' : s.paused ? 'paused' : done ? 'up_to_date' : 'working');
    const tag = { up_to_date: ['ok', 'up to date'], working: ['', 'working'], paused: ['warn', 'paused'], stalled: ['bad', 'stalled'], blocked: ['bad', 'blocked'] }[st] || ['', st];
    const notes = (s.notes || []).map((n) => h('p', { class: 'note small' }, h('span', { text: n.text + ' ' }), n.action ? actionControl(n.action) : null));
    grid.append(h('div', { class: 'card stage' + (s.stalled ? ' stalled' : '') + ' state-' + st, 'data-stage': s.name, 'data-state': st },
      h('div', { class: 'row' }, h('h3', { text: titleCase(s.name) }), h('span', { class: 'spacer' }), h('span', { class: 'tag ' + tag[0], text: tag[1] })),
      st === 'stalled' || st === 'blocked' || st === 'paused'
        ? h('p', { class: 'warnbox stall-reason' }, h('span', { text: (s.detail || s.stall_reason || 'This stage looks stuck.') + ' ' }), s.action ? actionControl(s.action) : null)
        : h('p', { class: 'small stage-detail', text: s.detail || '' }),
      s.reembed ? h('div', { class: 'reembed small' }, h('span', { text: 'Re-embedding for ' + (s.reembed.to.startsWith('all-minilm') ? 'MiniLM' : 'the lite model') + ': ' + num(s.reembed.done) + ' of ' + num(s.reembed.total) }), bar(s.reembed.done, s.reembed.total)) : null,
      ...notes,
      h('div', { class: 'row' }, h('span', { class: 'big-num', text: pct(s.processed, s.total) + '%' }), h('span', { class: 'muted', text: num(s.processed) + ' of ' + num(s.total) })),
      bar(s.processed, s.total, done ? 'ok' : ''),
      sparkline(state.pipeHistory.map((r) => r[s.name] || 0)),
      h('div', { class: 'stat' }, h('span', {}, 'rate ', h('b', { text: rate.toFixed(0) }), '/min'), h('span', {}, 'queue ', h('b', { text: num(s.queue_depth) })), h('span', {}, 'in flight ', h('b', { text: num(s.in_flight) }))),
      h('div', { class: 'stat' }, h('span', {}, 'failed ', h('b', { text: num(s.failed) })), h('span', {}, 'dead letters ', h('b', { text: num(s.dead_letters) })),
        s.controllable ? null : h('span', {}, 'imports waiting ', h('b', { text: num(s.pending) }))),
      workerList(s.workers),
      ctrl));
  }
  const notes = [];
  if (state.pipeline.ops_error) notes.push(h('p', { class: 'warnbox', text: 'Cannot tell which workers are alive: ' + state.pipeline.ops_error }));
  for (const src of state.pipeline.stalled_sources || []) {
    notes.push(h('p', { class: 'warnbox stalled-source', 'data-source': src.id }, h('b', { text: 'Source stalled: ' }), (src.account || src.id) + ' (' + src.kind + ') — ' + src.reason + '. ',
      h('a', { href: '#/sources', text: 'Check the source' })));
  }
  host.replaceChildren(...notes, grid);
}

// workerList shows the live worker processes of a stage from their heartbeats.
function workerList(ws) {
  if (!Array.isArray(ws)) return h('div', { class: 'workers muted small', 'data-alive': '', text: 'workers: unknown' });
  const box = h('div', { class: 'workers small', 'data-alive': String(ws.length) },
    h('span', { class: ws.length ? '' : 'error' }, 'workers alive ', h('b', { text: String(ws.length) })));
  if (!ws.length) { box.append(h('div', { class: 'muted', text: 'No worker of this stage is running.' })); return box; }
  const ul = h('ul', { class: 'worker-list muted' });
  for (const w of ws) {
    const ago = Math.max(0, Math.round((Date.now() - new Date(w.last_beat)) / 1000));
    ul.append(h('li', { class: 'worker', title: 'started ' + new Date(w.started).toLocaleString() },
      h('span', { text: (w.host || w.instance) + (w.pid ? ' · pid ' + w.pid : '') }),
      ' — beat ', h('span', { class: 'beat', text: isNaN(ago) ? '?' : ago + ' s ago' }),
      w.in_flight ? ' · ' + w.in_flight + ' in flight' : ''));
  }
  box.append(ul);
  return box;
}

function sparkline(vals) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('class', 'spark'); svg.setAttribute('viewBox', '0 0 100 30'); svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', 'processing rate over the last minutes');
  const max = Math.max(1, ...vals);
  const pts = vals.map((v, i) => (vals.length === 1 ? 100 : (i / (vals.length - 1)) * 100).toFixed(1) + ',' + (28 - (v / max) * 26).toFixed(1));
  const base = document.createElementNS(ns, 'line');
  base.setAttribute('x1', '0'); base.setAttribute('x2', '100'); base.setAttribute('y1', '28.5'); base.setAttribute('y2', '28.5'); base.setAttribute('stroke', 'var(--line)');
  svg.append(base);
  if (pts.length) {
    const pl = document.createElementNS(ns, 'polyline');
    pl.setAttribute('points', pts.join(' ')); pl.setAttribute('fill', 'none'); pl.setAttribute('stroke', 'var(--accent)'); pl.setAttribute('stroke-width', '1.5'); pl.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.append(pl);
  }
  return svg;
}

async function drawDeadLetters(root) {
  const host = root.querySelector('#pipe-dl');
  const r = await api('GET', '/api/v1/deadletters?limit=200');
  const dls = r.dead_letters || [];
  const all = h('button', { class: 'small', text: 'Retry all', disabled: !dls.length });
  all.onclick = () => run(all, async () => { const x = await api('POST', '/api/v1/deadletters/retry'); toast(x.retried + ' messages sent again'); await drawDeadLetters(root); });
  host.replaceChildren(h('div', { class: 'row' }, h('h2', { text: 'Dead letters' }), h('span', { class: 'spacer' }), all));
  if (!dls.length) { host.append(h('p', { class: 'muted', text: 'None — every message that failed has been dealt with.' })); return; }
  const tb = h('tbody');
  for (const d of dls) {
    const b = h('button', { class: 'small', text: 'Retry' });
    b.onclick = () => run(b, async () => { await api('POST', '/api/v1/deadletters/' + d.id + '/retry'); toast('Sent again'); await drawDeadLetters(root); });
    tb.append(h('tr', {}, h('td', { text: d.stage }), h('td', {}, d.key && /^[0-9a-f]{32}$/.test(d.key) ? h('a', { href: '#/mail/' + d.key, text: d.key.slice(0, 10) + '…' }) : (d.key || d.msg_id)),
      h('td', { class: 'error', text: d.error }), h('td', { text: d.attempts + '×' }), h('td', { text: fmtDate(d.created_at) }), h('td', {}, b)));
  }
  host.append(h('div', { class: 'card', style: 'overflow-x:auto' }, h('table', {}, h('thead', {}, h('tr', {}, ...['Stage', 'Item', 'Reason', 'Tries', 'When', ''].map((t) => h('th', { text: t })))), tb)));
}

// ---------- sources ----------
async function viewSources(box) {
  box.append(h('h1', { text: 'Sources' }));
  const back = new URLSearchParams(location.hash.split('?')[1] || '');
  if (back.get('error')) box.append(h('p', { class: 'warnbox', text: back.get('error') }));
  if (back.get('connected')) box.append(h('p', { class: 'card', text: '✓ Account connected; the first sync has started.' }));
  // Upload
  const file = h('input', { type: 'file', id: 'upload-file', accept: '.mbox,.eml,.mbx,application/mbox,message/rfc822' });
  const prog = h('div', { id: 'upload-progress' });
  const upBtn = h('button', { class: 'primary', type: 'submit', id: 'upload-submit', text: 'Upload' });
  const form = h('form', { class: 'card', onsubmit: (ev) => { ev.preventDefault(); if (file.files[0]) upload(file.files[0], prog, upBtn); } },
    h('h2', { style: 'margin-top:0', text: 'Upload an mbox or .eml file' }),
    h('p', { class: 'muted small', text: 'Export from Gmail Takeout, Thunderbird or Apple Mail. Large files are fine; importing the same file twice adds nothing.' }),
    h('div', { class: 'row' }, h('div', { style: 'flex:1' }, file), upBtn), prog);
  box.append(form);
  // Connected sources
  const srcCard = h('div', { class: 'card' }, h('h2', { style: 'margin-top:0', text: 'Accounts' }));
  let sources = null, gmailInfo = {}, outlookInfo = {};
  try { const r = await api('GET', '/api/v1/sources'); sources = list(r, 'sources', 'items'); gmailInfo = r.gmail || {}; outlookInfo = r.outlook || {}; } catch (e) { if (!missing(e)) srcCard.append(h('p', { class: 'error', text: e.message })); }
  if (sources === null) srcCard.append(h('p', { class: 'muted', text: 'Connecting mail accounts is not available in this build — upload files above instead.' }));
  else if (!sources.length) srcCard.append(h('p', { class: 'muted', text: 'No accounts connected yet.' }));
  else {
    const tb = h('tbody');
    for (const s of sources) tb.append(h('tr', { 'data-source': s.id }, h('td', { text: s.kind }), h('td', { text: s.account || s.name }), h('td', {}, h('span', { class: 'tag ' + (s.status === 'failed' || s.status === 'reconnect_needed' ? 'bad' : 'ok'), text: s.status })),
      h('td', { text: num(s.emails_count) + ' emails' }), h('td', { class: 'error small', text: s.last_error || '' }), sourceActions(s)));
    srcCard.append(h('table', {}, tb));
  }
  box.append(srcCard);
  // Row actions: sync now, pause/resume, reconnect (Gmail through Google again;
  // IMAP through the form below, which then replaces only the sign-in), remove.
  let reconnecting = null;
  function sourceActions(s) {
    const td = h('td', { class: 'actions' });
    const btn = (text, fn) => { const b = h('button', { class: 'small', text }); b.onclick = () => run(b, fn); td.append(b); };
    const post = (what, msg) => async () => { await api('POST', '/api/v1/sources/' + encodeURIComponent(s.id) + '/' + what); toast(msg); render('sources'); };
    if (s.status === 'reconnect_needed') {
      btn('Reconnect', async () => {
        if (s.kind === 'gmail') { location.href = '/api/v1/oauth/google/start?source_id=' + encodeURIComponent(s.id); return; }
        if (s.kind === 'outlook') { location.href = '/api/v1/oauth/microsoft/start?source_id=' + encodeURIComponent(s.id); return; }
        reconnectIMAP(s);
      });
    }
    if (s.status === 'paused') btn('Resume', post('resume', 'Source resumed'));
    else { btn('Sync now', post('sync', 'Sync requested')); btn('Pause', post('pause', 'Source paused')); }
    btn('Remove', async () => {
      if (!confirm('Remove ' + (s.account || s.name) + '? Its mail stays here.')) return;
      await api('DELETE', '/api/v1/sources/' + encodeURIComponent(s.id)); toast('Source removed'); render('sources');
    });
    return td;
  }
  function reconnectIMAP(s) {
    const c = s.config || {};
    reconnecting = s;
    f.host.value = c.host || ''; f.port.value = c.port || 993; f.username.value = c.username || s.account || '';
    f.mailbox.value = (c.folders && c.folders[0]) || 'INBOX';
    for (const n of ['host', 'port', 'username', 'mailbox']) f[n].disabled = true;
    authSel.value = c.auth || 'password'; setAuth();
    imTitle.textContent = 'Reconnect ' + (s.account || s.name);
    imBtn.textContent = 'Update sign-in';
    document.getElementById('imap-form').scrollIntoView();
  }
  // Gmail
  const redirect = gmailInfo.redirect_uri || location.origin + '/api/v1/oauth/google/callback';
  const gBtn = h('button', { class: 'primary', text: 'Connect Gmail', disabled: sources === null });
  gBtn.onclick = () => { location.href = '/api/v1/oauth/google/start'; };
  box.append(h('div', { class: 'card' }, h('h2', { style: 'margin-top:0', text: 'Gmail' }),
    h('p', { class: 'small' }, 'In Google Cloud Console, create an OAuth client (type “Web application”) and register exactly this redirect URI:'),
    h('p', {}, h('span', { class: 'code', id: 'redirect-uri', text: redirect })),
    h('p', { class: 'warnbox', text: 'While your OAuth consent screen is in “Testing” publishing status, Google expires refresh tokens after 7 days and you will have to reconnect. Publish the app (it can stay unverified for your own account) to avoid this.' }),
    gBtn));
  // Outlook and Microsoft 365
  const msRedirect = outlookInfo.redirect_uri || location.origin + '/api/v1/oauth/microsoft/callback';
  const oBtn = h('button', { class: 'primary', id: 'connect-outlook', text: 'Connect Outlook', disabled: sources === null });
  oBtn.onclick = () => { location.href = '/api/v1/oauth/microsoft/start'; };
  const oSteps = h('ol', { class: 'small' },
    h('li', { text: 'In the Microsoft Entra admin center (entra.microsoft.com), open App registrations → New registration.' }),
    h('li', { text: 'Supported account types: “Accounts in any organizational directory and personal Microsoft accounts”, so Outlook.com and work or school mailboxes both work.' }),
    h('li', {}, 'Redirect URI: platform “Web”, exactly ', h('span', { class: 'code', id: 'ms-redirect-uri', text: msRedirect })),
    h('li', { text: 'Certificates & secrets → New client secret. API permissions: Microsoft Graph, delegated: Mail.Read, User.Read, offline_access (read-only; OwnYou never sends or changes mail).' }),
    h('li', { text: 'Set OWNYOU_MICROSOFT_CLIENT_ID and OWNYOU_MICROSOFT_CLIENT_SECRET for the gateway and the ingest service, and restart.' }));
  box.append(h('div', { class: 'card', id: 'outlook-card' }, h('h2', { style: 'margin-top:0', text: 'Outlook and Microsoft 365' }),
    h('p', { class: 'small', text: outlookInfo.configured ? 'Sign in with your Microsoft account; OwnYou reads every mail folder and then only what changed.' : 'Not set up yet: register an app with Microsoft once, then connect with one click.' }),
    outlookInfo.configured ? h('p', { class: 'small' }, 'Redirect URI registered with Microsoft: ', h('span', { class: 'code', text: msRedirect })) : oSteps,
    oBtn));
  if (!outlookInfo.configured) oBtn.disabled = true;
  // IMAP
  const f = {};
  const field = (name, label, type, extra) => h('label', {}, label, (f[name] = h('input', { name, type: type || 'text', ...extra })));
  const imBtn = h('button', { class: 'primary', type: 'submit', text: 'Connect IMAP', disabled: sources === null });
  // Auth: a password (or app password), or OAuth2 (XOAUTH2) with what a token refresh needs.
  const authSel = h('select', { name: 'auth', id: 'imap-auth' }, h('option', { value: 'password', text: 'Password or app password' }), h('option', { value: 'xoauth2', text: 'OAuth2 (XOAUTH2)' }));
  const pwBox = h('div', {}, field('password', 'Password or app password', 'password', { autocomplete: 'new-password', required: true }));
  const oauthBox = h('div', { class: 'grid2', hidden: true },
    field('token_url', 'Token URL', 'url', { placeholder: 'https://login.microsoftonline.com/common/oauth2/v2.0/token' }), field('client_id', 'Client ID', 'text', { autocomplete: 'off' }),
    field('client_secret', 'Client secret', 'password', { autocomplete: 'new-password' }), field('refresh_token', 'Refresh token', 'password', { autocomplete: 'new-password' }),
    field('access_token', 'Access token (instead of a refresh token; works until it expires)', 'password', { autocomplete: 'new-password' }));
  const setAuth = () => {
    const oauth = authSel.value === 'xoauth2';
    pwBox.hidden = oauth; oauthBox.hidden = !oauth;
    f.password.required = !oauth;
  };
  authSel.addEventListener('change', setAuth);
  const imapBody = () => {
    const b = { kind: 'imap', name: f.username.value, host: f.host.value, port: Number(f.port.value), security: 'tls', username: f.username.value, folders: [f.mailbox.value || 'INBOX'], auth: authSel.value };
    if (authSel.value === 'xoauth2') {
      b.oauth = { token_url: f.token_url.value.trim(), client_id: f.client_id.value.trim(), client_secret: f.client_secret.value, refresh_token: f.refresh_token.value.trim(), access_token: f.access_token.value.trim() };
    } else b.password = f.password.value;
    return b;
  };
  const imTitle = h('h2', { style: 'margin-top:0', text: 'IMAP account' });
  box.append(h('form', { class: 'card', id: 'imap-form', onsubmit: (ev) => { ev.preventDefault(); run(imBtn, async () => {
    const b = imapBody();
    if (reconnecting) {
      await api('POST', '/api/v1/sources/' + encodeURIComponent(reconnecting.id) + '/credentials', { auth: b.auth, password: b.password, oauth: b.oauth });
      toast('Sign-in updated; syncing'); render('sources'); return;
    }
    await api('POST', '/api/v1/sources', b);
    toast('IMAP account added'); render('sources');
  }); } }, imTitle,
  h('div', { class: 'grid2' }, field('host', 'Server', 'text', { placeholder: 'imap.example.com', required: true }), field('port', 'Port', 'number', { value: '993', required: true }),
    field('username', 'User name', 'text', { autocomplete: 'off', required: true }), h('label', {}, 'Sign-in', authSel),
    field('mailbox', 'Mailbox', 'text', { value: 'INBOX' })),
  pwBox, oauthBox,
  h('p', { class: 'muted small', text: 'OAuth2: the provider’s token URL and your OAuth client, plus a refresh token; OwnYou refreshes the access token itself and stores everything encrypted.' }),
  imBtn));
  // Imports
  const imps = h('div', { id: 'imports' });
  box.append(h('h2', { text: 'Recent imports' }), imps);
  await drawImports(imps);
}

async function drawImports(host) {
  const r = await api('GET', '/api/v1/imports');
  if (!r.imports.length) { host.replaceChildren(h('p', { class: 'muted', text: 'No files imported yet.' })); return; }
  const tb = h('tbody');
  for (const im of r.imports) tb.append(h('tr', {}, h('td', { text: im.filename }), h('td', {}, h('span', { class: 'tag ' + (im.status === 'done' ? 'ok' : im.status === 'failed' ? 'bad' : ''), text: im.status })),
    h('td', { text: num(im.imported) + ' new · ' + num(im.duplicates) + ' dup · ' + num(im.errors) + ' errors' }), h('td', { class: 'error small', text: im.error || '' }), h('td', { text: fmtDate(im.created_at) })));
  host.replaceChildren(h('div', { class: 'card', style: 'overflow-x:auto' }, h('table', {}, tb)));
}

function upload(fileObj, prog, btn) {
  btn.disabled = true;
  const label = h('div', { class: 'small', text: 'Uploading ' + fileObj.name + '…' });
  const b = bar(0, 1);
  prog.replaceChildren(h('div', { style: 'margin-top:.7rem' }, label, b));
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/v1/imports');
  xhr.setRequestHeader('X-CSRF-Token', state.csrf);
  xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) { b.firstChild.style.width = pct(ev.loaded, ev.total) + '%'; label.textContent = 'Uploading ' + fileObj.name + ': ' + pct(ev.loaded, ev.total) + '%'; } };
  xhr.onerror = () => { btn.disabled = false; label.textContent = 'Upload failed: network error'; label.className = 'error'; };
  xhr.onload = () => {
    btn.disabled = false;
    let r = {};
    try { r = JSON.parse(xhr.responseText); } catch (_) { /* handled below */ }
    if (xhr.status !== 202) { label.textContent = 'Upload failed: ' + ((r.error && r.error.message) || xhr.status); label.className = 'error'; return; }
    pollImport(r.id, label, b);
  };
  const fd = new FormData();
  fd.append('file', fileObj);
  xhr.send(fd);
}

async function pollImport(id, label, b) {
  for (;;) {
    let im;
    try { im = await api('GET', '/api/v1/imports/' + id); } catch (e) { label.textContent = e.message; return; }
    b.firstChild.style.width = pct(im.bytes_read, im.bytes_total) + '%';
    label.textContent = 'Importing ' + im.filename + ': ' + im.status + ' · ' + num(im.messages) + ' messages read, ' + num(im.imported) + ' new, ' + num(im.duplicates) + ' duplicates, ' + num(im.errors) + ' errors';
    label.id = 'import-status';
    label.dataset.status = im.status;
    if (im.status === 'done' || im.status === 'failed') {
      if (im.status === 'failed') { label.className = 'error'; label.textContent += ' — ' + im.error; }
      const host = document.getElementById('imports'); if (host) drawImports(host);
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---------- settings ----------
async function viewSettings(box, args) {
  box.append(h('h1', { text: 'Settings' }));
  const modelsHost = h('div', { class: 'card', id: 'models' });
  await drawModels(modelsHost);
  if (args && args[0] === 'models') setTimeout(() => modelsHost.scrollIntoView({ block: 'start' }), 0);
  const st = await api('GET', '/api/v1/settings');
  const f = {};
  const save = h('button', { class: 'primary', type: 'submit', text: 'Save' });
  box.append(modelsHost);
  box.append(h('form', { class: 'card', onsubmit: (ev) => { ev.preventDefault(); run(save, async () => {
    await api('PUT', '/api/v1/settings', { llm_endpoint: f.ep.value, llm_model: f.model.value, llm_monthly_budget: Number(f.budget.value || 0), remote_images: f.img.checked, cloud_llm_allowed: f.cloud.checked });
    toast('Settings saved');
  }); } },
  h('h2', { style: 'margin-top:0', text: 'Language model' }),
  h('p', { class: 'muted small', text: 'By default everything runs on this server. Point OwnYou at an OpenAI-compatible endpoint only if you accept that mail text is sent there.' }),
  h('div', { class: 'grid2' },
    h('label', {}, 'Endpoint URL', (f.ep = h('input', { type: 'url', placeholder: 'http://127.0.0.1:11434/v1', value: st.llm_endpoint }))),
    h('label', {}, 'Model', (f.model = h('input', { type: 'text', placeholder: 'llama3.1:8b', value: st.llm_model }))),
    h('label', {}, 'Monthly budget (USD)', (f.budget = h('input', { type: 'number', min: '0', step: '0.5', value: String(st.llm_monthly_budget || 0) })))),
  h('h2', { text: 'Privacy' }),
  h('label', { class: 'check' }, (f.cloud = h('input', { type: 'checkbox', checked: !!st.cloud_llm_allowed })), 'Allow sending mail text to the LLM endpoint'),
  h('label', { class: 'check' }, (f.img = h('input', { type: 'checkbox', checked: !!st.remote_images })), 'Load remote images in mail (lets senders see when you read)'),
  save));
  // tokens
  const tokHost = h('div');
  const tokName = h('input', { type: 'text', placeholder: 'e.g. backup script' });
  const tokBtn = h('button', { type: 'submit', text: 'Create token' });
  box.append(h('form', { class: 'card', onsubmit: (ev) => { ev.preventDefault(); run(tokBtn, async () => {
    const t = await api('POST', '/api/v1/tokens', { name: tokName.value });
    tokName.value = '';
    await drawTokens(tokHost);
    tokHost.prepend(h('p', { class: 'warnbox' }, 'Copy this token now; it is not shown again: ', h('span', { class: 'code', text: t.token })));
  }); } }, h('h2', { style: 'margin-top:0', text: 'API tokens' }), h('p', { class: 'muted small' }, 'For scripts: send ', h('span', { class: 'code', text: 'Authorization: Bearer <token>' }), '.'),
  h('div', { class: 'row' }, h('div', { style: 'flex:1' }, tokName), tokBtn), tokHost));
  await drawTokens(tokHost);
  // export / delete
  const confirmIn = h('input', { type: 'text', id: 'delete-confirm', placeholder: 'Type DELETE to confirm', autocomplete: 'off' });
  const del = h('button', { class: 'danger solid', text: 'Delete everything', disabled: true });
  confirmIn.oninput = () => { del.disabled = confirmIn.value !== 'DELETE'; };
  del.onclick = () => run(del, async () => { await api('POST', '/api/v1/delete-everything', { confirm: confirmIn.value }); confirmIn.value = ''; toast('All mail and derived data deleted'); });
  const out = h('button', { id: 'signout', text: 'Sign out' });
  out.onclick = () => run(out, async () => { await api('POST', '/api/v1/auth/logout'); showAuth(false); });
  box.append(h('div', { class: 'card' }, h('h2', { style: 'margin-top:0', text: 'Your data' }),
    h('div', { class: 'row' }, h('a', { href: '/api/v1/export?format=json', download: '', text: '⬇ Export everything (JSON)' }), h('span', { class: 'muted', text: '·' }), h('a', { href: '/api/v1/export?format=mbox', download: '', text: '⬇ Export all mail (mbox)' })),
    h('h2', { class: 'error', text: 'Delete everything' }),
    h('p', { class: 'small muted', text: 'Removes all mail, your profile, missions and sources from this server. Your password, API tokens and settings stay. This cannot be undone.' }),
    h('div', { class: 'row' }, h('div', { style: 'flex:1' }, confirmIn), del)),
  h('div', { class: 'card row' }, h('span', { class: 'muted', text: 'Signed in as the household admin.' }), h('span', { class: 'spacer' }), out));
}

// ---------- settings: models ----------
const BYTES = (n) => (n >= 1e9 ? (n / 1e9).toFixed(1) + ' GB' : n >= 1e6 ? (n / 1e6).toFixed(0) + ' MB' : Math.max(1, Math.round(n / 1e3)) + ' kB');

// drawModels shows every pinned model and runtime with its state and a
// Download / Retry button, and the embedding model in use; while a download
// runs it redraws itself every second, as long as it is on screen.
async function drawModels(host) {
  const r = await api('GET', '/api/v1/models');
  const e = r.embedding || {};
  const title = h('h2', { style: 'margin-top:0', text: 'Models' });
  const pref = h('select', { id: 'embed-pref' },
    h('option', { value: 'auto', text: 'Automatic: MiniLM when downloaded, else the lite model' }),
    h('option', { value: 'minilm', text: 'MiniLM (better search; needs the download and more CPU)' }),
    h('option', { value: 'lite', text: 'Lite model (word vectors: for weak CPUs)' }));
  pref.value = e.preference || 'auto';
  pref.onchange = () => run(pref, async () => { await api('PUT', '/api/v1/models/embedding', { preference: pref.value }); toast('The embedder follows within a minute'); await drawModels(host); });
  const active = h('div', { class: 'embedding', id: 'embedding-active' },
    h('p', {}, h('b', { text: 'Embedding model in use: ' }), h('span', { id: 'embedding-name', text: e.active_name || 'none yet' })),
    h('p', { class: 'muted small', text: e.quality || '' }),
    e.reason ? h('p', { class: 'warnbox small', text: e.reason }) : null,
    e.blocked ? h('p', { class: 'warnbox small', text: e.blocked }) : null,
    e.reembed ? h('div', { class: 'small' }, h('span', { text: 'Re-embedding all mail for ' + e.target_name + ': ' + num(e.reembed.done) + ' of ' + num(e.reembed.total) + '. Search uses ' + e.active_name + ' until it is done.' }), bar(e.reembed.done, e.reembed.total)) : null,
    h('label', {}, 'Which embedding model', pref));
  const tb = h('tbody');
  let busy = false;
  for (const m of r.models || []) {
    const statusText = { missing: 'not downloaded', partial: 'interrupted at ' + Math.round(m.progress * 100) + ' %', downloading: 'downloading ' + Math.round(m.progress * 100) + ' %', verified: 'verified', failed: 'failed' }[m.status] || m.status;
    const cell = h('td', { class: 'model-status', 'data-status': m.status }, h('span', { class: 'tag ' + (m.status === 'verified' ? 'ok' : m.status === 'failed' ? 'bad' : 'warn'), text: statusText }));
    if (m.status === 'downloading' || m.status === 'partial') cell.append(bar(m.progress * 100, 100));
    if (m.status === 'failed') cell.append(h('div', { class: 'error small', text: m.error || '' }), m.url ? h('div', { class: 'muted small code', text: m.url }) : null);
    let btn = null;
    if (m.status === 'downloading') busy = true;
    else if (m.status !== 'verified') {
      btn = h('button', { class: 'small primary', 'data-model': m.name, text: m.status === 'failed' ? 'Retry' : m.status === 'partial' ? 'Resume' : 'Download' });
      btn.onclick = () => run(btn, async () => { await api('POST', '/api/v1/models/' + encodeURIComponent(m.name) + '/download'); await drawModels(host); });
    }
    tb.append(h('tr', { 'data-model': m.name },
      h('td', {}, h('b', { text: m.title }), h('div', { class: 'muted small', text: m.description + (m.optional ? ' (optional)' : '') })),
      h('td', { class: 'small', text: BYTES(m.size) }), cell, h('td', {}, btn)));
  }
  host.replaceChildren(title, active, h('table', { class: 'models-table' }, tb),
    h('p', { class: 'muted small', text: 'Downloads are checked against pinned sha256 sums and resume where they stopped; the same as make models. Files go to ' + (r.dir || 'the model cache') + '.' }));
  if (busy) {
    clearTimeout(drawModels.t);
    drawModels.t = setTimeout(() => { if (host.isConnected) drawModels(host).catch(() => {}); }, 1000);
  }
}

async function drawTokens(host) {
  const r = await api('GET', '/api/v1/tokens');
  if (!r.tokens.length) { host.replaceChildren(h('p', { class: 'muted small', text: 'No tokens yet.' })); return; }
  const tb = h('tbody');
  for (const t of r.tokens) {
    const b = h('button', { class: 'small danger', text: 'Revoke' });
    b.onclick = () => run(b, async () => { await api('DELETE', '/api/v1/tokens/' + t.id); await drawTokens(host); });
    tb.append(h('tr', {}, h('td', { text: t.name || '(unnamed)' }), h('td', { class: 'muted small', text: 'created ' + fmtDate(t.created_at) }), h('td', { class: 'muted small', text: t.last_used_at ? 'used ' + fmtDate(t.last_used_at) : 'never used' }), h('td', {}, b)));
  }
  host.replaceChildren(h('table', {}, tb));
}
