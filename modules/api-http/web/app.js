// The status page's script: reads the agent's JSON routes every few seconds and draws them.
// No framework, no library, nothing from another host. Every value from the agent is put into the
// page as text (textContent), never as markup.
'use strict';

const REFRESH_MS = 5000;
const TOKEN_KEY = 'agent-api-token';

const state = {
  paused: false,
  timer: 0,
  generation: 0,      // of the latest refresh: an older one still in flight neither draws nor reschedules
  plugins: [],        // the last /plugins/list answer
  pluginsAvailable: true,
  sort: { key: 'key', ascending: true },
  openDetails: new Set(), // module names whose health details are open
  busy: new Set(),        // "action:ns/project" of actions in flight
};

const $ = (selector) => document.querySelector(selector);

// el('td', {class: 'num'}, 'text', child...): a new element; attributes starting with "on" are
// listeners, `hidden`/`disabled` are booleans.
function el(tag, attributes, ...children) {
  const node = tag === 'svg' || SVG_TAGS.has(tag)
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const SVG_TAGS = new Set(['path', 'line', 'text', 'circle', 'title', 'desc', 'g']);

// ---- formatting --------------------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, '0');
function clock(seconds) {
  if (!seconds) return '—';
  const d = new Date(seconds * 1000);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}
function duration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60, s = seconds % 60;
  if (d) return `${d} d ${h} h`;
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  if (m) return s ? `${m} min ${s} s` : `${m} min`;
  return `${s} s`;
}
function ago(seconds) { return seconds ? `${clock(seconds)} (${duration(Date.now() / 1000 - seconds)} ago)` : 'never'; }
function count(n) { return typeof n === 'number' ? n.toLocaleString('en-US') : '—'; }
function bytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}
function stateCell(kind, text) { return el('span', { class: `state ${kind}` }, text); }

// ---- talking to the agent ------------------------------------------------------------------------

class Unauthorized extends Error {}

// GETs or POSTs a route of this agent with the kept token; throws Unauthorized on 401 and an
// Error carrying the agent's {"error"} text on any other failure.
async function api(path, method = 'GET') {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, cache: 'no-store' });
  if (response.status === 401) throw new Unauthorized();
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---- token prompt --------------------------------------------------------------------------------

function showTokenPrompt(message) {
  // No data may stay on the page once the agent refused us.
  $('#data').hidden = true;
  for (const body of document.querySelectorAll('#data tbody')) body.replaceChildren();
  $('#charts').replaceChildren();
  $('#token-section').hidden = false;
  $('#token-error').textContent = message || '';
  $('#refresh-state').textContent = 'Waiting for a token';
  $('#forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
  $('#token-input').focus();
}

$('#token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('#token-input').value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('#token-input').value = '';
  $('#token-error').textContent = '';
  refreshNow();
});

$('#forget-token').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  refreshNow();
});

$('#pause').addEventListener('click', () => {
  state.paused = !state.paused;
  $('#pause').setAttribute('aria-pressed', String(state.paused));
  $('#pause').textContent = state.paused ? 'Resume refresh' : 'Pause refresh';
  if (!state.paused) refreshNow();
  else { clearTimeout(state.timer); $('#refresh-state').textContent = 'Refresh paused'; }
});

// ---- refresh -------------------------------------------------------------------------------------

function refreshNow() {
  clearTimeout(state.timer);
  return refresh();
}

async function refresh() {
  const generation = ++state.generation;
  try {
    // The plugin table is optional: without source-exec /plugins/list answers 404.
    const [status, history, log, plugins] = await Promise.all([
      api('/me/status'), api('/me/history'), api('/me/log'),
      api('/plugins/list').catch((error) => {
        if (error instanceof Unauthorized) throw error;
        return { unavailable: error.message };
      }),
    ]);
    if (generation !== state.generation) return;
    $('#token-section').hidden = true;
    $('#load-error').hidden = true;
    $('#forget-token').hidden = !sessionStorage.getItem(TOKEN_KEY);
    // Redrawing replaces the elements: keep the keyboard focus where it was.
    const focusKey = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.focusKey : undefined;
    $('#data').hidden = false; // before drawing: the charts measure their width
    renderStatus(status);
    renderCharts(history, status);
    renderLog(log);
    state.pluginsAvailable = !plugins.unavailable;
    state.plugins = Array.isArray(plugins) ? plugins : [];
    $('#plugins-note').hidden = state.pluginsAvailable;
    // Without source-exec there is no table to show, only why.
    $('#plugins-toolbar').hidden = $('#plugins-scroll').hidden = !state.pluginsAvailable;
    $('#plugins-note').textContent = state.pluginsAvailable ? '' : `No plugin table: ${plugins.unavailable}`;
    renderPlugins();
    if (focusKey) {
      const again = document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
      if (again) again.focus();
    }
    $('#refresh-state').textContent = `Updated ${clock(Date.now() / 1000)}; every ${REFRESH_MS / 1000} s`;
  } catch (error) {
    if (generation !== state.generation) return;
    if (error instanceof Unauthorized) {
      const hadToken = !!sessionStorage.getItem(TOKEN_KEY);
      if (hadToken) sessionStorage.removeItem(TOKEN_KEY);
      showTokenPrompt(hadToken ? 'The agent refused that token.' : '');
      return; // no polling without a token: the form starts it again
    }
    $('#load-error').hidden = false;
    $('#load-error').textContent = `Cannot read the agent: ${error.message}. Retrying.`;
    $('#refresh-state').textContent = `Last attempt ${clock(Date.now() / 1000)} failed`;
  }
  if (!state.paused) state.timer = setTimeout(refresh, REFRESH_MS);
}

// ---- agent, registry, modules, sinks -------------------------------------------------------------

function facts(list, pairs) {
  list.replaceChildren(...pairs.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
}

function renderStatus(status) {
  $('#title-host').textContent = status.hostname ? `on ${status.hostname}` : '';
  document.title = `Agent on ${status.hostname || 'this host'}`;
  facts($('#agent-facts'), [
    ['Version', `${status.version} (${status.commit})`],
    ['Host', status.hostname],
    ['Namespaces', (status.namespaces || []).join(', ') || 'none'],
    ['Uptime', duration(status.uptime_seconds)],
  ]);
  const registry = status.registry || {};
  const failed = !!registry.last_error;
  facts($('#registry-facts'), [
    ['Address', registry.address || 'none (no registryaddr)'],
    // The poller clears last_error at each good poll: it is there only when the last poll failed.
    ['Last poll', !registry.address ? stateCell('ok', 'not used')
      : failed ? stateCell('bad', `failed: ${registry.last_error}`)
      : registry.polls ? stateCell('ok', 'ok') : stateCell('warn', 'no poll yet')],
    ['Last success', ago(registry.last_success)],
    ['Polls / failures', `${count(registry.polls)} / ${count(registry.failures)}`],
    ['Namespaces listed', count(registry.namespaces)],
  ]);

  const modules = Object.entries(status.modules || {});
  $('#modules tbody').replaceChildren(...modules.map(([name, module]) => moduleRow(name, module)));
  const sinks = modules.filter(([, module]) => module.delivery);
  $('#sinks tbody').replaceChildren(...sinks.map(([name, module]) => sinkRow(name, module.delivery)));
}

// A module's health in one word: stopped, failing tasks, an error in its health or delivery, or ok.
function moduleState(module) {
  const executor = module.executor || {};
  const health = module.health || {};
  if (!module.running) return ['bad', 'stopped'];
  if (executor.abandoned) return ['bad', 'task abandoned'];
  if (health.status && health.status !== 'ok') return ['warn', String(health.status)];
  if (module.delivery && module.delivery.last_error) return ['warn', 'delivery errors'];
  if (executor.failures) return ['warn', `${executor.failures} task failures`];
  if (health.last_error) return ['warn', 'error reported'];
  return ['ok', 'ok'];
}

function moduleRow(name, module) {
  const [kind, text] = moduleState(module);
  const executor = module.executor || {};
  const details = el('details', {
    open: state.openDetails.has(name),
    ontoggle: (event) => event.target.open ? state.openDetails.add(name) : state.openDetails.delete(name),
  }, el('summary', { 'data-focus-key': `details:${name}` }, 'Health', el('span', { class: 'visually-hidden' }, ` of ${name}`)),
  el('pre', { class: 'mono' }, JSON.stringify(module.health || {}, null, 2)));
  return el('tr', { 'data-module': name },
    el('th', { scope: 'row' }, name),
    el('td', {}, (module.roles || []).join(', ')),
    el('td', {}, stateCell(kind, text)),
    el('td', { class: 'num' }, `${count(executor.runs)} runs, ${count(executor.failures)} failed`),
    el('td', {}, details));
}

function sinkRow(name, d) {
  return el('tr', { 'data-sink': name },
    el('th', { scope: 'row' }, name),
    el('td', { class: 'num' }, count(d.points_in)),
    el('td', { class: 'num' }, count(d.points_out)),
    el('td', { class: 'num' }, count(d.points_retried)),
    el('td', { class: 'num' }, count(d.points_dropped)),
    el('td', { class: 'num' }, bytes(d.spool_bytes)),
    el('td', { class: 'num' }, bytes(d.spool_pending_bytes)),
    el('td', { class: 'wrap' }, d.last_error ? [stateCell('bad', d.last_error), ` at ${clock(d.last_error_time)}`] : 'none'));
}

// ---- charts: hand-written SVG line charts --------------------------------------------------------

const HEIGHT = 180, LEFT = 52, RIGHT = 10, TOP = 10, BOTTOM = 24, WINDOW = 900;

// A readable top for the y axis: 1, 2 or 5 times a power of ten, at least `max`.
function niceMax(max) {
  if (!(max > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(max)));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}
function axisNumber(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return `${+value.toFixed(2)}`;
}

// One figure: `lines` = [{label, values}] over `times` (seconds), the last 15 minutes up to `end`.
// `width` is the figure's width in CSS pixels, so that the labels keep their size on a phone.
function lineChart(id, title, unit, times, lines, fixedMax, end, width) {
  const start = end - WINDOW;
  const all = lines.flatMap((line) => line.values).filter((v) => typeof v === 'number');
  const top = fixedMax || niceMax(Math.max(0, ...all));
  const x = (t) => LEFT + ((t - start) / WINDOW) * (width - LEFT - RIGHT);
  const y = (v) => TOP + (1 - Math.min(v, top) / top) * (HEIGHT - TOP - BOTTOM);

  const svg = el('svg', {
    class: 'chart', viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`,
  });
  const latest = lines.map((line) => {
    const last = [...line.values].reverse().find((v) => typeof v === 'number');
    return `${line.label} ${last === undefined ? 'no value' : axisNumber(last) + ' ' + unit}`;
  }).join(', ');
  svg.append(el('title', { id: `${id}-title` }, title), el('desc', { id: `${id}-desc` }, `Latest: ${latest}.`));
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    svg.append(el('line', { class: 'grid-line', x1: LEFT, x2: width - RIGHT, y1: y(value), y2: y(value) }),
      el('text', { class: 'axis-label', x: LEFT - 6, y: y(value) + 4, 'text-anchor': 'end' }, axisNumber(value)));
  }
  for (const minutes of [15, 10, 5, 0]) {
    const t = end - minutes * 60;
    svg.append(el('text', { class: 'axis-label', x: x(t), y: HEIGHT - 6, 'text-anchor': minutes === 15 ? 'start' : minutes === 0 ? 'end' : 'middle' },
      minutes ? `−${minutes} min` : 'now'));
  }
  lines.forEach((line, index) => {
    // A gap in the data (null) breaks the line; a lone point is drawn as a dot.
    let d = '', points = 0, run = [];
    const flush = () => {
      if (run.length === 1) svg.append(el('circle', { class: `dot series-${index}`, cx: run[0][0], cy: run[0][1], r: 2.5 }));
      run = [];
    };
    times.forEach((t, i) => {
      const v = line.values[i];
      if (typeof v !== 'number' || t < start) { flush(); return; }
      const point = [x(t).toFixed(1), y(v).toFixed(1)];
      d += `${run.length ? 'L' : 'M'}${point[0]} ${point[1]} `;
      run.push(point);
      points++;
    });
    flush();
    svg.append(el('path', { class: `line series-${index}`, d: d.trim() || 'M0 0', 'data-points': points }));
  });
  const legend = el('ul', { class: 'legend' }, lines.map((line, index) =>
    el('li', {}, el('span', { class: `key series-${index}`, 'aria-hidden': 'true' }), line.label)));
  return el('figure', { id }, el('figcaption', {}, `${title} (${unit})`), svg, legend);
}

function renderCharts(history, status) {
  const times = history.times || [];
  const series = history.series || {};
  const end = times.length ? times[times.length - 1] : Date.now() / 1000;
  // The grid puts two charts side by side from 2 × 420 px (style.css .charts).
  const available = $('#charts').clientWidth || 600;
  const columns = available >= 2 * 420 + 16 ? 2 : 1;
  const width = Math.max(280, Math.round((available - (columns - 1) * 16) / columns));
  const figures = [lineChart('chart-host', 'Host CPU and memory', '%', times, [
    { label: 'CPU busy', values: series['host.cpu_percent'] || [] },
    { label: 'Memory used', values: series['host.mem_percent'] || [] },
  ], 100, end, width)];
  for (const name of Object.keys(status.modules || {})) {
    if (!series[`sink.${name}.in`]) continue;
    figures.push(lineChart(`chart-sink-${name}`, `Sink ${name}: points per second`, 'points/s', times, [
      { label: 'In', values: series[`sink.${name}.in`] },
      { label: 'Out', values: series[`sink.${name}.out`] || [] },
    ], 0, end, width));
  }
  $('#charts').replaceChildren(...figures);
}

// ---- plugins -------------------------------------------------------------------------------------

const PLUGIN_COLUMNS = [
  { key: 'ns', label: 'Namespace', value: (p) => p.ns },
  { key: 'project', label: 'Project', value: (p) => p.project },
  { key: 'period', label: 'Period', value: (p) => p.period, show: (p) => p.period ? duration(p.period) : 'on demand', num: true },
  { key: 'last_start', label: 'Last run', value: (p) => p.last_start, show: (p) => clock(p.last_start) },
  { key: 'duration_ms', label: 'Duration', value: (p) => p.duration_ms, show: (p) => p.runs ? `${count(p.duration_ms)} ms` : '—', num: true },
  { key: 'result', label: 'Status', value: (p) => pluginStatus(p)[1], show: (p) => stateCell(...pluginStatus(p)) },
  { key: 'next_run', label: 'Next run', value: (p) => p.next_run || Infinity, show: (p) => p.enabled ? clock(p.next_run) : 'disabled' },
  { key: 'disabled_until', label: 'Disabled until', value: (p) => p.disabled_until || 0, show: (p) => p.disabled_until ? clock(p.disabled_until) : '—' },
];

function pluginStatus(p) {
  if (p.running) return ['ok', 'running'];
  if (p.result === 'ok') return ['ok', 'ok'];
  if (p.result === 'never run') return ['warn', 'never run'];
  return ['bad', p.result + (p.last_error ? `: ${p.last_error}` : '')];
}

function renderPluginHeader() {
  const row = $('#plugins thead tr');
  row.replaceChildren(...PLUGIN_COLUMNS.map((column) => {
    const sorted = state.sort.key === column.key;
    return el('th', { scope: 'col', class: column.num ? 'num' : undefined, 'aria-sort': sorted ? (state.sort.ascending ? 'ascending' : 'descending') : 'none' },
      el('button', {
        type: 'button', class: 'sort', 'data-focus-key': `sort:${column.key}`,
        onclick: () => {
          state.sort = { key: column.key, ascending: sorted ? !state.sort.ascending : true };
          renderPlugins();
          $(`[data-focus-key="sort:${column.key}"]`).focus();
        },
      }, column.label, el('span', { class: 'visually-hidden' }, ', sort')));
  }), el('th', { scope: 'col' }, 'Actions'));
}

function renderPlugins() {
  renderPluginHeader();
  const filter = $('#plugin-filter').value.trim().toLowerCase();
  const column = PLUGIN_COLUMNS.find((c) => c.key === state.sort.key) || PLUGIN_COLUMNS[0];
  const rows = state.plugins
    .filter((p) => !filter || [p.ns, p.project, p.repo, pluginStatus(p)[1]].join(' ').toLowerCase().includes(filter))
    .sort((a, b) => {
      const va = column.value(a), vb = column.value(b);
      const order = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
      return (state.sort.ascending ? order : -order) || `${a.ns}/${a.project}`.localeCompare(`${b.ns}/${b.project}`);
    });
  $('#plugin-count').textContent = `${rows.length} of ${state.plugins.length} shown`;
  $('#plugins tbody').replaceChildren(...rows.map(pluginRow));
}

function pluginRow(p) {
  const name = `${p.ns}/${p.project}`;
  const cells = PLUGIN_COLUMNS.map((column, index) => {
    const content = column.show ? column.show(p) : column.value(p);
    const cls = column.num ? 'num' : column.key === 'result' ? 'status' : undefined;
    return index === 1 ? el('th', { scope: 'row' }, content) : el('td', { class: cls }, content);
  });
  const button = (action, label) => el('button', {
    type: 'button', 'data-action': action, 'data-plugin': name, 'data-focus-key': `${action}:${name}`,
    'aria-label': `${label} plugin ${name}`, disabled: state.busy.has(`${action}:${name}`),
    onclick: () => pluginAction(action, p),
  }, label);
  const actions = el('td', {}, el('div', { class: 'actions' },
    button('run', 'Run'), button('update', 'Update'),
    p.enabled ? button('disable', 'Disable') : button('enable', 'Enable')));
  return el('tr', { 'data-plugin': name }, cells, actions);
}

// Calls /plugins/<action> for one plugin, says what came of it, then refreshes the table.
async function pluginAction(action, p) {
  const name = `${p.ns}/${p.project}`;
  const busyKey = `${action}:${name}`;
  const result = $('#plugin-action-result');
  state.busy.add(busyKey);
  renderPlugins();
  result.textContent = `${action} ${name}…`;
  try {
    const query = `ns=${encodeURIComponent(p.ns)}&repo=${encodeURIComponent(p.repo)}`;
    const answer = await api(`/plugins/${action}?${query}`, 'POST');
    if (action === 'run') result.textContent = `Ran ${name}: ${answer.result} in ${answer.duration_ms} ms${answer.error ? ` (${answer.error})` : ''}`;
    else if (action === 'update') result.textContent = `Updated ${name}: commit ${answer.commit}${answer.changed ? ' (changed)' : ' (unchanged)'}`;
    else if (answer.enabled) result.textContent = `Enabled ${name}`;
    else result.textContent = `Disabled ${name} until ${clock(answer.disabled_until)}`;
  } catch (error) {
    if (generation !== state.generation) return;
    if (error instanceof Unauthorized) { showTokenPrompt('The agent asks for the token again.'); return; }
    result.textContent = `${action} ${name} failed: ${error.message}`;
  } finally {
    state.busy.delete(busyKey);
  }
  await refreshNow();
  // The pressed button was disabled and redrawn meanwhile: give the keyboard focus back to it, or
  // to the button that replaced it (Enable after Disable).
  if (document.activeElement === document.body || !document.activeElement) {
    const next = { disable: 'enable', enable: 'disable' }[action] || action;
    const button = document.querySelector(`[data-focus-key="${CSS.escape(`${next}:${name}`)}"]`);
    if (button) button.focus();
  }
}

$('#plugin-filter').addEventListener('input', renderPlugins);

// ---- log -----------------------------------------------------------------------------------------

function renderLog(entries) {
  const rows = (entries || []).slice().reverse().map((entry) => el('tr', {},
    el('td', {}, clock(entry.time)),
    el('td', {}, stateCell(entry.level === 'warning' ? 'warn' : 'bad', entry.level)),
    el('td', {}, entry.source),
    el('td', { class: 'wrap mono' }, entry.text)));
  $('#log tbody').replaceChildren(...(rows.length ? rows
    : [el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No warnings or errors since the agent started.'))]));
}

refresh();
