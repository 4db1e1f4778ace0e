// The Jarvis console: sessions and their streams as /v1/events tells them, health from /healthz and (for the
// admin scope) /metrics, the last day's usage from /v1/usage, and a box to try a barge-in. Plain JavaScript with
// preact + htm, served by Jarvis itself.
import { h, render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
const showContent = document.body.dataset.showContent === '1';
const KEY = 'jarvis-console-key';

const auth = (key) => (key ? { authorization: `Bearer ${key}` } : {});

/** Reads an SSE response, calling `onEvent(type, data)` for each event, until it ends or `signal` aborts. */
async function readSse(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(type, data);
    }
  }
}

/** One Prometheus text exposition, summed per metric name and, where asked, per one label. */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? ([^ ]+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    out[m[1]] = (out[m[1]] ?? 0) + value;
    const status = /status="(\d+)"/.exec(m[2] ?? '');
    if (m[1] === 'jarvis_http_requests_total' && status && Number(status[1]) >= 400) {
      out.errors ??= {};
      out.errors[status[1]] = (out.errors[status[1]] ?? 0) + value;
    }
  }
  return out;
}

/** The streams of each session, built from events: start, batches, and how each ended. */
function useEvents(key, onUnauthorized) {
  const [sessions, setSessions] = useState(new Map());
  useEffect(() => {
    const controller = new AbortController();
    const streams = new Map();
    const bySession = new Map();
    let pending = false;
    const publish = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        setSessions(new Map([...bySession].map(([s, ids]) => [s, ids.map((id) => ({ ...streams.get(id) }))])));
      });
    };
    (async () => {
      const res = await fetch('/v1/events', { headers: { accept: 'text/event-stream', ...auth(key) }, signal: controller.signal });
      if (res.status === 401 || res.status === 403) return onUnauthorized(res.status);
      await readSse(res, (type, data) => {
        if (!type.startsWith('chat.')) return;
        const e = JSON.parse(data);
        let s = streams.get(e.request_id);
        if (!s) {
          s = { id: e.request_id, session: e.session_id, startedAt: e.ts, batches: [], tokens: 0, text: '', end: undefined };
          streams.set(e.request_id, s);
          const list = bySession.get(e.session_id) ?? [];
          // A stream cancelled as superseded was superseded by the next one of its session.
          const prev = list.at(-1) && streams.get(list.at(-1));
          if (prev && prev.end?.reason === 'superseded') prev.supersededBy = e.request_id;
          list.push(e.request_id);
          bySession.set(e.session_id, list);
        }
        if (type === 'chat.start') s.model = e.data.model;
        if (type === 'chat.token') {
          s.firstTokenAt ??= e.ts;
          s.batches.push({ ts: e.ts, tokens: e.data.tokens, size: (e.data.text ?? '').length });
          s.tokens += e.data.tokens ?? 0;
          s.text += e.data.text ?? '';
        }
        if (type === 'chat.end' || type === 'chat.cancelled' || type === 'chat.error') {
          s.end = { type, reason: e.data.reason, finish: e.data.finish_reason, delivered: e.data.delivered_tokens, generated: e.data.generated_tokens, upstream: e.data.upstream, at: e.ts };
          const list = bySession.get(e.session_id) ?? [];
          const next = list[list.indexOf(e.request_id) + 1];
          if (next && e.data.reason === 'superseded') s.supersededBy = next;
        }
        publish();
      });
    })().catch(() => {});
    return () => controller.abort();
  }, [key]);
  return sessions;
}

function useHealth(key) {
  const [health, setHealth] = useState(undefined);
  const [metrics, setMetrics] = useState(undefined);
  const series = useRef({ t: [], tokens: [], requests: [], loop: [] });
  const last = useRef(undefined);
  useEffect(() => {
    let stop = false;
    const tick = async () => {
      if (stop) return;
      try {
        const [healthz, readyz] = await Promise.all([fetch('/healthz', { headers: auth(key) }), fetch('/readyz', { headers: auth(key) })]);
        setHealth({ ...(await healthz.json()), ready: await readyz.json() });
        const res = await fetch('/metrics', { headers: auth(key) });
        if (res.ok) {
          const m = parseMetrics(await res.text());
          const now = Date.now() / 1000;
          const prev = last.current;
          if (prev) {
            const dt = now - prev.now;
            const s = series.current;
            s.t.push(now);
            s.tokens.push(((m.jarvis_tokens_relayed_total ?? 0) - prev.tokens) / dt);
            s.requests.push(((m.jarvis_http_requests_total ?? 0) - prev.requests) / dt);
            s.loop.push((m.nodejs_eventloop_lag_p99_seconds ?? 0) * 1000);
            for (const k of Object.keys(s)) if (s[k].length > 60) s[k].shift();
          }
          last.current = { now, tokens: m.jarvis_tokens_relayed_total ?? 0, requests: m.jarvis_http_requests_total ?? 0 };
          setMetrics({ ...m, series: series.current });
        } else setMetrics(null);
      } catch {
        // the server may be restarting
      }
      setTimeout(tick, 1000);
    };
    void tick();
    return () => (stop = true);
  }, [key]);
  return { health, metrics };
}

function Chart({ series }) {
  const el = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    if (!el.current || !series || series.t.length < 2) return;
    const data = [series.t, series.tokens, series.requests, series.loop];
    if (!plot.current) {
      plot.current = new uPlot(
        {
          width: 560,
          height: 160,
          series: [{}, { label: 'tokens/s', stroke: '#2b6cb0' }, { label: 'requests/s', stroke: '#2f855a' }, { label: 'loop p99 ms', stroke: '#c05621', scale: 'ms' }],
          axes: [{}, {}, { side: 1, scale: 'ms' }],
        },
        data,
        el.current,
      );
    } else plot.current.setData(data);
  });
  return html`<div class="chart" ref=${el}></div>`;
}

function Health({ health, metrics }) {
  if (!health) return html`<section class="health">connecting…</section>`;
  const tile = (label, value) => html`<div class="tile"><b>${value}</b><span>${label}</span></div>`;
  const s = metrics?.series;
  return html`<section class="health">
    <div class="tiles">
      ${tile('streams', health.streams)} ${tile('sessions', health.sessions)} ${tile('buffers', health.buffers)}
      ${tile('timers', health.timers)} ${tile('subscribers', health.subscribers)}
      ${metrics ? tile('tokens/s', (s.tokens.at(-1) ?? 0).toFixed(0)) : ''} ${metrics ? tile('requests/s', (s.requests.at(-1) ?? 0).toFixed(1)) : ''}
      ${metrics ? tile('loop p50 / p99 ms', `${((metrics.nodejs_eventloop_lag_p50_seconds ?? 0) * 1000).toFixed(1)} / ${((metrics.nodejs_eventloop_lag_p99_seconds ?? 0) * 1000).toFixed(1)}`) : ''}
    </div>
    ${metrics ? html`<${Chart} series=${s} />` : html`<p class="note">Rates and the event loop are for the admin scope (/metrics).</p>`}
    ${metrics?.errors ? html`<p class="errors">Errors by status: ${Object.entries(metrics.errors).map(([k, v]) => `${k}: ${v}`).join(', ')}</p>` : ''}
    <p class="upstreams">Upstreams: ${health.ready?.status ?? '?'}${health.ready?.providers ? ` (${health.ready.providers.map((p) => `${p.id} ${p.ready ? 'ready' : 'not ready'}`).join(', ')})` : ''}${health.circuits ? `; circuits: ${health.circuits.map((c) => `${c.upstream} ${c.state}`).join(', ')}` : ''}</p>
    <p class="note">Redis: ${health.redis?.state}</p>
  </section>`;
}

/** The last day's totals from /v1/usage per key and per model, every 5 s; what the viewer's key may read. */
function useUsage(key) {
  const [usage, setUsage] = useState(undefined);
  useEffect(() => {
    let stop = false;
    const get = async (groupBy) => {
      const res = await fetch(`/v1/usage?group_by=${groupBy}`, { headers: auth(key) });
      const body = await res.json().catch(() => undefined);
      return res.ok ? { rows: body.data } : { status: res.status, message: body?.error?.message };
    };
    const tick = async () => {
      if (stop) return;
      try {
        const [byKey, byModel] = await Promise.all([get('key'), get('model')]);
        const failed = byKey.rows ? byModel : byKey;
        if (!stop) setUsage(failed.rows ? { byKey: byKey.rows, byModel: byModel.rows } : { status: failed.status, message: failed.message });
      } catch {
        // the server may be restarting: keep what was shown
      }
      setTimeout(tick, 5000);
    };
    void tick();
    return () => (stop = true);
  }, [key]);
  return usage;
}

const count = (n) => n.toLocaleString('en-US');
/** Dollars: cents from a dollar up, else two significant digits (a test's few tokens cost millionths). */
const dollars = (n) =>
  n === null ? '—' : n === 0 ? '$0' : n >= 1 ? `$${n.toFixed(2)}` : new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumSignificantDigits: 2 }).format(n);
const share = (part, whole) => {
  if (!whole) return '0%';
  const pct = (100 * part) / whole;
  return `${pct >= 10 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)}%`;
};

/** The sums of a list of rows: tokens add up, cost over the priced rows (null when none was priced). */
function totalOf(rows) {
  const t = { requests: 0, input_tokens: 0, output_tokens: 0, delivered_tokens: 0, not_heard_tokens: 0, cost: null };
  for (const r of rows) {
    for (const k of ['requests', 'input_tokens', 'output_tokens', 'delivered_tokens', 'not_heard_tokens']) t[k] += r[k];
    if (r.cost !== null) t.cost = (t.cost ?? 0) + r.cost;
  }
  return t;
}

/** Output tokens per key as bars: the heard part drawn over the whole, so what shows above it was not heard. */
function UsageChart({ rows }) {
  const el = useRef(null);
  const plot = useRef(null);
  const names = useRef([]);
  useEffect(() => () => plot.current?.destroy(), []);
  useEffect(() => {
    names.current = rows.map((r) => r.key ?? '(no key)');
    const data = [rows.map((_, i) => i), rows.map((r) => r.output_tokens), rows.map((r) => r.output_tokens - r.not_heard_tokens)];
    if (plot.current) return plot.current.setData(data);
    const bars = uPlot.paths.bars({ size: [0.6, 64] });
    plot.current = new uPlot(
      {
        width: 340,
        height: 180,
        cursor: { show: false },
        legend: { live: false },
        scales: { x: { time: false, range: (u) => [-0.5, u.data[0].length - 0.5] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        series: [
          {},
          { label: 'not heard', fill: '#fbd38d', stroke: '#dd6b20', paths: bars, points: { show: false } },
          { label: 'heard', fill: '#90cdf4', stroke: '#2b6cb0', paths: bars, points: { show: false } },
        ],
        axes: [
          { splits: (u) => u.data[0], values: (_u, splits) => splits.map((i) => names.current[i] ?? ''), grid: { show: false } },
          { size: 56, values: (_u, splits) => splits.map(count) },
        ],
      },
      data,
      el.current,
    );
  }, [rows]);
  return html`<div class="chart usage-chart"><div class="title">Output tokens per key</div><div ref=${el}></div></div>`;
}

function UsageTable({ by, rows }) {
  const cells = (r) => html`<td>${count(r.requests)}</td><td>${count(r.input_tokens)}</td><td>${count(r.output_tokens)}</td><td>${count(r.delivered_tokens)}</td>
    <td>${count(r.not_heard_tokens)} <span class="pct">(${share(r.not_heard_tokens, r.output_tokens)})</span></td><td>${dollars(r.cost)}</td>`;
  return html`<table class="usage-table" data-by=${by}>
    <thead><tr><th>${by}</th><th>requests</th><th>input tokens</th><th>output tokens</th><th>delivered</th><th>not heard</th><th>cost</th></tr></thead>
    <tbody>${rows.map((r) => html`<tr data-row=${r[by] ?? ''}><th>${r[by] ?? html`<span class="note">(no key)</span>`}</th>${cells(r)}</tr>`)}</tbody>
    <tfoot><tr class="total"><th>total</th>${cells(totalOf(rows))}</tr></tfoot>
  </table>`;
}

function Usage({ usage }) {
  const body = () => {
    if (!usage) return html`<p class="note">loading…</p>`;
    if (usage.status === 401 || usage.status === 403) return html`<p class="note">Usage needs a key with the chat or admin scope.</p>`;
    if (usage.status) return html`<p class="note unavailable">No usage here (${usage.status}): ${usage.message ?? 'the ledger is unavailable'}</p>`;
    if (usage.byKey.length === 0) return html`<p class="note">No usage in the last 24 hours.</p>`;
    const t = totalOf(usage.byKey);
    const tile = (name, label, value) => html`<div class="tile" data-tile=${name}><b>${value}</b><span>${label}</span></div>`;
    return html`<div class="tiles">
        ${tile('cost', 'cost', dollars(t.cost))} ${tile('requests', 'requests', count(t.requests))} ${tile('output', 'output tokens', count(t.output_tokens))}
        ${tile('not-heard', `of the output not heard (${count(t.not_heard_tokens)} tokens)`, share(t.not_heard_tokens, t.output_tokens))}
      </div>
      <div class="usage-body">
        <${UsageChart} rows=${usage.byKey} />
        <div class="usage-tables"><${UsageTable} by="key" rows=${usage.byKey} /><${UsageTable} by="model" rows=${usage.byModel} /></div>
      </div>`;
  };
  return html`<section class="usage"><h2>Usage (last 24 h)</h2>${body()}</section>`;
}

function Stream({ s }) {
  const status = !s.end
    ? 'streaming'
    : s.end.type === 'chat.end'
      ? `answered (${s.end.finish})`
      : s.end.type === 'chat.cancelled'
        ? `cancelled (${s.end.reason})`
        : 'error';
  const cls = !s.end ? 'live' : s.end.type === 'chat.end' ? 'ended' : s.end.type === 'chat.cancelled' ? 'cancelled' : 'failed';
  return html`<li class=${`stream ${cls}`} data-request=${s.id}>
    <div class="line">
      <code>${s.id}</code> <span class="status">${status}</span>
      ${s.end ? html` <span class="cleanup">· cleaned up</span>` : ''}
      ${s.supersededBy ? html` <span class="by">· superseded by <code>${s.supersededBy}</code></span>` : ''}
      ${s.end?.upstream ? html` <span>· served by ${s.end.upstream}</span>` : ''}
    </div>
    <div class="meta">
      ${s.model ?? ''} · first token ${s.firstTokenAt ? `+${s.firstTokenAt - s.startedAt} ms` : '–'} · ${s.batches.length} batches ·
      ${s.end ? `${s.end.delivered ?? 0} delivered / ${s.end.generated ?? 0} generated tokens` : `${s.tokens} tokens so far`}
    </div>
    <div class="batches">${s.batches.map((b) => html`<i title=${`${b.tokens} tokens, ${b.size} chars`} style=${`width:${Math.min(40, 2 + b.tokens * 2)}px`}></i>`)}</div>
    ${showContent && s.text ? html`<p class="text">${s.text}</p>` : ''}
  </li>`;
}

function Sessions({ sessions }) {
  if (sessions.size === 0) return html`<section class="sessions"><p class="note">No streams yet: try one below.</p></section>`;
  return html`<section class="sessions">
    ${[...sessions].reverse().map(([id, streams]) => html`<div class="session" data-session=${id}><h3>session <code>${id}</code></h3><ul>${streams.map((s) => html`<${Stream} s=${s} />`)}</ul></div>`)}
  </section>`;
}

function TryIt({ keyValue }) {
  const [session, setSession] = useState(`console-${Math.random().toString(36).slice(2, 8)}`);
  const [policy, setPolicy] = useState('cancel-previous');
  const [model, setModel] = useState('');
  const [prompt, setPrompt] = useState('Write a long essay about rivers');
  const [answers, setAnswers] = useState([]);
  const send = async (e) => {
    e.preventDefault();
    const index = answers.length;
    setAnswers((a) => [...a, { prompt, text: '', finish: '…' }]);
    const update = (f) => setAnswers((a) => a.map((x, i) => (i === index ? f(x) : x)));
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-session-id': session, 'x-session-policy': policy, ...auth(keyValue) },
        body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: prompt }], ...(model ? { model } : {}) }),
      });
      if (res.status !== 200) return update((x) => ({ ...x, finish: `${res.status}` }));
      await readSse(res, (_type, data) => {
        if (data === '[DONE]') return;
        const c = JSON.parse(data).choices?.[0];
        update((x) => ({ ...x, text: x.text + (c?.delta?.content ?? ''), finish: c?.finish_reason ?? x.finish }));
      });
    } catch (err) {
      update((x) => ({ ...x, finish: String(err) }));
    }
  };
  return html`<section class="tryit">
    <h2>Try it</h2>
    <form onSubmit=${send}>
      <label>session <input name="session" value=${session} onInput=${(e) => setSession(e.target.value)} /></label>
      <label>policy <select name="policy" value=${policy} onChange=${(e) => setPolicy(e.target.value)}>
        ${['cancel-previous', 'queue', 'reject', 'parallel'].map((p) => html`<option value=${p}>${p}</option>`)}
      </select></label>
      <label>model <input name="model" placeholder="default" value=${model} onInput=${(e) => setModel(e.target.value)} /></label>
      <input name="prompt" class="prompt" value=${prompt} onInput=${(e) => setPrompt(e.target.value)} />
      <button type="submit">Send</button>
    </form>
    <p class="note">Send again while an answer streams: the newer request barges in.</p>
    <ol class="answers">${answers.map((a) => html`<li><b>${a.prompt}</b> <span class="finish">${a.finish}</span><p>${a.text}</p></li>`)}</ol>
  </section>`;
}

function KeyForm({ onKey, status }) {
  const [value, setValue] = useState('');
  return html`<form class="keyform" onSubmit=${(e) => (e.preventDefault(), onKey(value))}>
    <p>${status === 403 ? 'This key may not read events.' : 'Jarvis has API keys: enter one (kept in this tab only).'}</p>
    <input type="password" name="key" autocomplete="off" value=${value} onInput=${(e) => setValue(e.target.value)} />
    <button type="submit">Use key</button>
  </form>`;
}

function Console() {
  const [key, setKey] = useState(sessionStorage.getItem(KEY) ?? '');
  const [denied, setDenied] = useState(undefined);
  const sessions = useEvents(key, setDenied);
  const { health, metrics } = useHealth(key);
  const usage = useUsage(key);
  const useKey = (k) => {
    sessionStorage.setItem(KEY, k);
    setDenied(undefined);
    setKey(k);
  };
  return html`<main>
    <header><h1>Jarvis</h1><span class="note">${key ? 'with a key' : 'no key'}</span></header>
    ${denied ? html`<${KeyForm} onKey=${useKey} status=${denied} />` : ''}
    <${Health} health=${health} metrics=${metrics} />
    <${Usage} usage=${usage} />
    <${TryIt} keyValue=${key} />
    <h2>Sessions</h2>
    <${Sessions} sessions=${sessions} />
  </main>`;
}

render(html`<${Console} />`, document.getElementById('app'));
