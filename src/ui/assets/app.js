// finpipe monitor: polls the JSON API every 2 s (paused while the tab is
// hidden) and renders it. Every piece of data goes into the DOM as text
// (textContent, setAttribute): no HTML is ever built from data.
'use strict';
(() => {
  const POLL_MS = 2000;
  const COVERAGE_EVERY = 5; // polls between heatmap refreshes (10 s)
  const STATES = ['pending', 'running', 'done', 'failed'];
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const num = new Intl.NumberFormat('en-US');
  const dec = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

  /** An element with properties and children (strings become text nodes). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    for (const child of children) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, props) {
    const node = document.createElementNS(SVG_NS, tag);
    setProps(node, props);
    return node;
  }

  function setProps(node, props) {
    if (!props) return;
    for (const [key, value] of Object.entries(props)) {
      if (value == null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'class') node.setAttribute('class', value);
      else node.setAttribute(key, String(value));
    }
  }

  /** Fetches JSON; an error answer throws its `error` message. */
  async function api(path) {
    let response;
    try {
      response = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
    } catch (e) {
      throw new Error('the page server cannot be reached: is finpipe ui still running?');
    }
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      throw new Error((body && typeof body.error === 'string') ? body.error : `${path} answered HTTP ${response.status}`);
    }
    return body;
  }

  function duration(seconds) {
    if (seconds == null || !isFinite(seconds)) return '–';
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  function ago(ms, now) {
    if (!ms) return '–';
    const s = Math.round((now - ms) / 1000);
    if (s < 0) return `in ${duration(-s)}`;
    return s < 2 ? 'just now' : `${duration(s)} ago`;
  }

  function clock(ms) {
    if (!ms) return '–';
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // ---- status line and banner ----
  function setLive(state, text) {
    $('live').dataset.live = state;
    $('live-text').textContent = text;
  }

  function showBanner(messages) {
    const banner = $('banner');
    if (!messages.length) {
      banner.hidden = true;
      banner.replaceChildren();
      return;
    }
    banner.replaceChildren(...messages.map((m, i) => el(i ? 'div' : 'span', null, m)));
    banner.hidden = false;
  }

  // ---- jobs ----
  function renderJobs(j) {
    $('library').textContent = j.library;
    $('db').textContent = j.db;
    $('basis').textContent = j.basis;
    for (const s of STATES) {
      const node = $(`count-${s}`);
      node.textContent = num.format(j.counts[s]);
      node.dataset.count = String(j.counts[s]);
    }
    $('bars-total').textContent = num.format(j.bars);
    $('requests-total').textContent = num.format(j.requests);
    $('bars-running').textContent = j.running.bars ? `${num.format(j.running.bars)} by running jobs` : '';
    $('requests-running').textContent = j.running.requests ? `${num.format(j.running.requests)} by running jobs` : '';
    const left = j.counts.pending + j.counts.running;
    if (left === 0) {
      $('eta').textContent = j.counts.total ? 'done' : '–';
      $('eta-note').textContent = j.counts.total ? 'nothing left to run' : 'no job planned';
    } else if (j.eta_s == null) {
      $('eta').textContent = '–';
      $('eta-note').textContent = `${num.format(left)} jobs left; no job finished lately`;
    } else {
      $('eta').textContent = duration(j.eta_s);
      const pace = j.jobs_per_s * 60;
      $('eta-note').textContent = `${num.format(left)} jobs left at ${pace >= 10 ? num.format(Math.round(pace)) : dec.format(pace)} a minute`;
    }
    const total = j.counts.total || 1;
    for (const s of ['done', 'failed', 'running']) {
      $(`progress-${s}`).style.width = `${(100 * j.counts[s]) / total}%`;
    }
    $('progress').title = `${num.format(j.counts.done)} done, ${num.format(j.counts.failed)} failed, ` +
      `${num.format(j.counts.running)} running, ${num.format(j.counts.pending)} pending`;
    renderRunners(j.runners, j.now);
  }

  function renderRunners(runners, now) {
    const rows = runners.map((r) => el('tr', { 'data-owner': r.owner },
      el('td', { class: 'mono' }, r.owner),
      el('td', { class: 'num' }, num.format(r.jobs)),
      el('td', { title: r.last_heartbeat_iso || '' }, ago(r.last_heartbeat, now)),
      el('td', null, r.expired ? el('span', { class: 'tag expired', title: 'the lease ran out: the runner may have died; another runner will claim its jobs' }, 'expired') : ago(r.lease_until, now)),
      el('td', { class: 'mono' }, r.tickers.join(', ') + (r.jobs > r.tickers.length ? ', …' : ''))));
    $('runners-body').replaceChildren(...rows);
    $('runners-empty').hidden = rows.length > 0;
  }

  // ---- rates ----
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * power) return step * power;
    }
    return 10 * power;
  }

  function drawChart(node, rates, key, cls, scale, limit) {
    const W = Math.max(200, Math.round(node.clientWidth || 600));
    const H = 180, L = 46, R = 10, T = 12, B = 22;
    node.setAttribute('viewBox', `0 0 ${W} ${H}`);
    const parts = [];
    const points = rates.points;
    const end = points.length ? points[points.length - 1].t : rates.now;
    // The history there is, stretched (at least a minute, at most the window).
    const span = Math.min(rates.window_s * 1000, Math.max(60000, points.length ? end - points[0].t : 0));
    const start = end - span;
    const values = points.map((p) => p[key] * scale);
    const top = niceMax(Math.max(0, ...values, limit != null ? limit * 1.15 : 0));
    const x = (t) => L + ((t - start) / (end - start || 1)) * (W - L - R);
    const y = (v) => T + (1 - Math.min(v, top) / top) * (H - T - B);
    for (const f of [0, 0.5, 1]) {
      const v = top * f;
      parts.push(svg('line', { class: 'axis', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      parts.push(svg('text', { class: 'tick', x: L - 6, y: y(v) + 3, 'text-anchor': 'end', text: dec.format(v) }));
    }
    for (const f of [1, 2 / 3, 1 / 3, 0]) {
      const back = Math.round((span * f) / 1000);
      const text = back === 0 ? 'now' : span <= 180000 ? `−${back} s` : `−${Math.round(back / 60)} min`;
      parts.push(svg('text', { class: 'tick', x: x(end - back * 1000), y: H - 6, 'text-anchor': f === 1 ? 'start' : f === 0 ? 'end' : 'middle', text }));
    }
    if (points.length < 2) {
      parts.push(svg('text', { class: 'nodata', x: W / 2, y: H / 2, 'text-anchor': 'middle', text: 'collecting samples…' }));
    } else {
      // One line per run of samples without a gap.
      let run = [];
      const flush = () => {
        if (run.length > 1) {
          const coords = run.map((p) => `${x(p.t).toFixed(1)},${y(p[key] * scale).toFixed(1)}`);
          const base = y(0).toFixed(1);
          parts.push(svg('polygon', { class: `area ${cls}`, points: `${x(run[0].t).toFixed(1)},${base} ${coords.join(' ')} ${x(run[run.length - 1].t).toFixed(1)},${base}` }));
          parts.push(svg('polyline', { class: `line ${cls}`, points: coords.join(' ') }));
        }
        run = [];
      };
      points.forEach((p, i) => {
        if (i > 0 && p.t - points[i - 1].t > rates.interval_s * 3000) flush();
        run.push(p);
      });
      flush();
    }
    if (limit != null) {
      parts.push(svg('line', { class: 'limit', x1: L, x2: W - R, y1: y(limit), y2: y(limit) }));
      parts.push(svg('text', { class: 'limit-label', x: W - R - 4, y: y(limit) - 4, 'text-anchor': 'end', text: `limit ${dec.format(limit)}` }));
    }
    node.replaceChildren(...parts);
  }

  let lastRates = null; // redrawn when the window is resized

  function renderRates(r) {
    lastRates = r;
    const limit = r.limit && r.limit.requests_per_s != null ? r.limit.requests_per_s : null;
    const perMinute = limit != null && limit < 1;
    const scale = perMinute ? 60 : 1;
    $('rate-unit').textContent = perMinute ? 'per minute' : 'per second';
    const now = r.current;
    $('requests-now').textContent = now ? dec.format(now.requests_per_s * scale) : '';
    $('bars-now').textContent = now ? num.format(Math.round(now.bars_per_s)) : '';
    const note = $('limit-note');
    note.textContent = limit != null ? `limit ${r.limit.text}` : r.limit ? `no limit (${r.limit.text})` : 'limit unknown: no run recorded';
    note.classList.toggle('none', limit == null);
    drawChart($('chart-requests'), r, 'requests_per_s', 'requests', scale, limit != null ? limit * scale : null);
    drawChart($('chart-bars'), r, 'bars_per_s', 'bars', 1, null);
  }

  // ---- failures ----
  function copyButton(text) {
    const button = el('button', { type: 'button', title: 'copy the command' }, 'copy');
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = 'copied';
      } catch (e) {
        button.textContent = 'select it';
      }
      setTimeout(() => { button.textContent = 'copy'; }, 1500);
    });
    return button;
  }

  function renderFailures(f) {
    $('failures-total').textContent = f.total ? `${num.format(f.total)} in total${f.truncated ? ' (the first 10 000 grouped)' : ''}` : '';
    const groups = f.groups.map((g) => {
      const rows = g.jobs.map((job) => el('tr', { 'data-job-id': job.id, 'data-ticker': job.ticker },
        el('td', { class: 'mono' }, job.job),
        el('td', { class: 'num' }, num.format(job.attempts)),
        el('td', { class: 'error-text' }, job.error || '')));
      const more = g.count > g.jobs.length
        ? el('p', { class: 'empty' }, `and ${num.format(g.count - g.jobs.length)} more: finpipe jobs list --state failed`)
        : null;
      return el('div', { class: 'failure-group', 'data-reason': g.reason },
        el('h3', null, g.label, el('span', { class: 'count', 'data-count': g.count }, `${num.format(g.count)} job${g.count === 1 ? '' : 's'}`)),
        el('p', { class: 'hint' }, g.hint),
        el('div', { class: 'retry-line' }, el('code', { 'data-retry': g.reason }, g.retry), copyButton(g.retry)),
        el('table', { class: 'grid' },
          el('thead', null, el('tr', null, el('th', null, 'job'), el('th', { class: 'num' }, 'attempts'), el('th', null, 'last error'))),
          el('tbody', null, ...rows)),
        more);
    });
    $('failure-groups').replaceChildren(...groups);
    $('failures-empty').hidden = groups.length > 0;
  }

  // ---- coverage ----
  const coverage = { timeframe: null, offset: 0, limit: 100, filter: '', problems: false, loaded: null };
  const CELL_CLASS = { c: 'c', p: 'p', h: 'h', l: 'l', '-': 'n' };

  function cellTitle(row, c, i, code, tf) {
    const month = c.months[i];
    const period = c.periods[i];
    const covered = row.covered_days[i];
    const open = row.open_days[i];
    const head = `${row.ticker} ${tf} ${month}: `;
    let text;
    switch (code) {
      case 'c': text = `covered (${covered} of ${open} open days)`; break;
      case 'p': text = covered
        ? `partly covered (${covered} of ${open} open days)`
        : `partly covered: the file ${period}.parquet is there but the job table vouches for none of its ${open} open days`;
        break;
      case 'h': text = `hole: none of ${open} open days covered, no file`; break;
      case 'l': text = `lost: the job table calls ${covered} of ${open} open days covered but ${period}.parquet is missing`; break;
      default: text = open ? 'not fetched' : 'no open day';
    }
    return head + text + (row.from_files ? ' (coverage read from the files\u2019 footers: the job table has none for this series)' : '');
  }

  function renderCoverage(c) {
    coverage.loaded = c;
    coverage.timeframe = c.timeframe;
    const tabs = c.timeframes.map((tf) => {
      const button = el('button', { type: 'button', role: 'tab', 'aria-selected': tf === c.timeframe ? 'true' : 'false', 'data-timeframe': tf }, tf);
      button.addEventListener('click', () => {
        coverage.timeframe = tf;
        coverage.offset = 0;
        loadCoverage().catch((e) => showBanner([e.message]));
      });
      return button;
    });
    $('coverage-timeframes').replaceChildren(...tabs);
    $('coverage-note').textContent = c.timeframe
      ? `${num.format(c.series)} series in ${c.timeframe}${c.frontier ? `, up to ${c.frontier}` : ''} · ${c.basis}`
      : 'nothing stored or covered yet';
    const months = c.months;
    const head = el('tr', null, el('th', { class: 'ticker' }, 'ticker'),
      ...months.map((m, i) => el('th', { class: 'month', title: `${m} (file ${c.periods[i]}.parquet)` }, m)));
    $('heatmap-head').replaceChildren(head);
    const body = [];
    if (months.length) {
      const counts = months.map((_, i) => ({ c: c.summary.covered[i], p: c.summary.partial[i], h: c.summary.hole[i], l: c.summary.lost[i] }));
      const most = Math.max(1, ...counts.map((k) => k.c + k.p + k.h + k.l));
      body.push(el('tr', { class: 'summary' }, el('td', { class: 'ticker', title: 'every series of this timeframe, per month' }, `all ${num.format(c.series)}`),
        ...counts.map((k, i) => el('td', { class: 'stack', title: `${months[i]}: ${num.format(k.c)} covered, ${num.format(k.p)} partly covered, ${num.format(k.h)} holes, ${num.format(k.l)} lost` },
          el('div', { class: 'stack-bar' }, ...['c', 'p', 'h', 'l'].map((s) => {
            const bar = el('i', { class: s });
            bar.style.height = `${(28 * k[s]) / most}px`;
            return bar;
          }))))));
    }
    for (const row of c.rows) {
      const cells = Array.from(row.cells);
      body.push(el('tr', { class: 'hm-row', 'data-ticker': row.ticker, 'data-cells': row.cells },
        el('td', { class: 'ticker', title: `${row.ticker}: ${num.format(row.files)} file${row.files === 1 ? '' : 's'}` }, row.ticker),
        ...cells.map((code, i) => el('td', { class: `cell-td ${CELL_CLASS[code] || 'n'}`, 'data-state': code, title: cellTitle(row, c, i, code, c.timeframe) }))));
    }
    if (!c.rows.length) {
      body.push(el('tr', null, el('td', { class: 'ticker', colspan: months.length + 1 },
        coverage.filter || coverage.problems ? 'no series matches' : 'no series yet')));
    }
    $('heatmap-body').replaceChildren(...body);
    const first = c.total ? c.offset + 1 : 0;
    const last = Math.min(c.offset + c.rows.length, c.total);
    $('coverage-page').textContent = `series ${num.format(first)}–${num.format(last)} of ${num.format(c.total)}`;
    $('coverage-prev').disabled = c.offset <= 0;
    $('coverage-next').disabled = c.offset + c.limit >= c.total;
  }

  async function loadCoverage() {
    const params = new URLSearchParams();
    if (coverage.timeframe) params.set('timeframe', coverage.timeframe);
    params.set('offset', String(coverage.offset));
    params.set('limit', String(coverage.limit));
    if (coverage.filter) params.set('ticker', coverage.filter);
    if (coverage.problems) params.set('only', 'problems');
    renderCoverage(await api(`/api/coverage?${params}`));
  }

  // ---- runs ----
  function renderRuns(r) {
    const rows = r.runs.map((run) => el('tr', { 'data-run-id': run.id },
      el('td', { class: 'num' }, run.id),
      el('td', { class: 'mono', title: run.owner }, run.command),
      el('td', { title: run.started_at_iso || '' }, clock(run.started_at)),
      el('td', { title: run.ended_at_iso || '' }, run.ended_at ? clock(run.ended_at) : '–'),
      el('td', { class: 'num' }, duration(run.duration_s)),
      el('td', { class: 'num', title: `${run.jobs_done} done, ${run.jobs_failed} failed` }, `${num.format(run.jobs_done)} / ${num.format(run.jobs_failed)}`),
      el('td', { class: 'num' }, num.format(run.bars)),
      el('td', { class: 'num' }, num.format(run.requests)),
      el('td', { class: 'num', title: 'answers of 429 (rate limited) received' }, num.format(run.rate_limited)),
      el('td', { class: 'mono' }, run.rate_limit || '–'),
      el('td', null, el('span', { class: `tag ${run.state.split(' ')[0]}`, title: run.exit_code == null ? 'no exit recorded' : `exit code ${run.exit_code}` },
        run.exit_code == null ? run.state : `${run.exit_code} ${run.state}`))));
    $('runs-body').replaceChildren(...rows);
    $('runs-empty').hidden = rows.length > 0;
  }

  // ---- polling ----
  let timer = null;
  let inflight = false;
  let polls = 0;

  async function poll() {
    timer = null;
    if (document.visibilityState === 'hidden') {
      setLive('paused', 'paused while the tab is hidden');
      return;
    }
    if (inflight) return;
    inflight = true;
    const errors = [];
    const note = (e) => { if (!errors.includes(e.message)) errors.push(e.message); };
    const [jobs, rates, failures, runs] = await Promise.allSettled([
      api('/api/jobs'), api('/api/rates'), api('/api/failures'), api('/api/runs?limit=50'),
    ]);
    for (const [result, render] of [[jobs, renderJobs], [rates, renderRates], [failures, renderFailures], [runs, renderRuns]]) {
      if (result.status === 'fulfilled') {
        try { render(result.value); } catch (e) { note(e); }
      } else {
        note(result.reason);
      }
    }
    if (polls % COVERAGE_EVERY === 0) {
      try { await loadCoverage(); } catch (e) { note(e); }
    }
    polls += 1;
    showBanner(errors);
    if (errors.length) setLive('error', `error · ${clock(Date.now()).slice(11)}`);
    else setLive('ok', `live · updated ${clock(Date.now()).slice(11)}`);
    inflight = false;
    schedule();
  }

  function schedule() {
    if (timer === null && document.visibilityState !== 'hidden') timer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') {
      if (timer !== null) { clearTimeout(timer); timer = null; }
      setLive('paused', 'paused while the tab is hidden');
    } else if (timer === null && !inflight) {
      poll();
    }
  });

  let filterTimer = null;
  $('coverage-filter').addEventListener('input', (event) => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      coverage.filter = event.target.value.trim().slice(0, 64);
      coverage.offset = 0;
      loadCoverage().catch((e) => showBanner([e.message]));
    }, 300);
  });
  $('coverage-problems').addEventListener('change', (event) => {
    coverage.problems = event.target.checked;
    coverage.offset = 0;
    loadCoverage().catch((e) => showBanner([e.message]));
  });
  $('coverage-prev').addEventListener('click', () => {
    coverage.offset = Math.max(0, coverage.offset - coverage.limit);
    loadCoverage().catch((e) => showBanner([e.message]));
  });
  $('coverage-next').addEventListener('click', () => {
    coverage.offset += coverage.limit;
    loadCoverage().catch((e) => showBanner([e.message]));
  });
  window.addEventListener('resize', () => {
    if (lastRates) renderRates(lastRates);
  });

  poll();
})();
