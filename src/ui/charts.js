// SPDX-License-Identifier: MIT
// Small SVG line charts for the dashboard (our own code, no library): time on x, one or more series on y, grid lines
// with "nice" ticks, a hover read-out through <title> on each point, and an empty state. Built with DOM calls only
// (no innerHTML, no style attributes), so it runs under the page's strict Content-Security-Policy.
'use strict';

(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2563eb', '#dc2626', '#9333ea', '#059669'];

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  /** A round step so that about n ticks cover max. */
  function niceStep(max, n) {
    const raw = max / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }

  function clock(t) {
    const d = new Date(t * 1000);
    return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  }

  /**
   * Draw into svg (replacing its content). opts: {times: [unix s], series: [{name, values: [number|null]}],
   * format: v => string, empty: 'text shown when every value is 0 or null'}.
   */
  function lineChart(svg, opts) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = Math.max(svg.clientWidth || 0, 300);
    const H = Math.max(svg.clientHeight || 0, 140);
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('role', 'img');
    const pad = { l: 46, r: 10, t: 10, b: 22 };
    const iw = W - pad.l - pad.r;
    const ih = H - pad.t - pad.b;
    const times = opts.times || [];
    const n = times.length;
    const fmt = opts.format || ((v) => String(v));
    let max = 0;
    let any = false;
    for (const s of opts.series)
      for (const v of s.values)
        if (v !== null && v !== undefined && isFinite(v)) {
          if (v > 0) any = true;
          if (v > max) max = v;
        }
    const label = [opts.title || ''];
    if (!any || n < 2) {
      el('line', { x1: pad.l, x2: W - pad.r, y1: pad.t + ih, y2: pad.t + ih, class: 'axis' }, svg);
      const t = el('text', { x: W / 2, y: pad.t + ih / 2, 'text-anchor': 'middle', class: 'empty' }, svg);
      t.textContent = opts.empty || 'No traffic yet';
      svg.setAttribute('aria-label', label.concat(t.textContent).join(': '));
      return;
    }
    const step = niceStep(max, 4);
    const top = Math.ceil(max / step) * step || step;
    const x = (i) => pad.l + (iw * i) / (n - 1);
    const y = (v) => pad.t + ih - (ih * v) / top;
    for (let v = 0; v <= top + step / 2; v += step) {
      el('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'grid-line' }, svg);
      const t = el('text', { x: pad.l - 6, y: y(v) + 3.5, 'text-anchor': 'end' }, svg);
      t.textContent = fmt(v);
    }
    const every = Math.max(1, Math.ceil(n / Math.max(2, Math.min(6, Math.floor(iw / 64))))); // labels never overlap
    for (let i = 0; i < n; i += every) {
      const t = el('text', { x: x(i), y: H - 6, 'text-anchor': i === 0 ? 'start' : 'middle' }, svg);
      t.textContent = clock(times[i]);
    }
    // the first series is the main one: draw it last so flat secondary lines (zero errors) do not hide it
    [...opts.series.keys()].reverse().forEach((si) => {
      const s = opts.series[si];
      const color = s.color || COLORS[si % COLORS.length];
      let d = '';
      let pen = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined || !isFinite(v)) {
          pen = false;
          return;
        }
        d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
        pen = true;
      });
      if (si === 0 && opts.area !== false) {
        // soft fill under the first series, when it is one unbroken line
        const firstIdx = s.values.findIndex((v) => v !== null && v !== undefined);
        if (firstIdx >= 0 && s.values.slice(firstIdx).every((v) => v !== null && v !== undefined))
          el('path', { d: d + `L${x(n - 1).toFixed(1)} ${y(0)} L${x(firstIdx).toFixed(1)} ${y(0)} Z`, fill: color, 'fill-opacity': '0.08', stroke: 'none' }, svg);
      }
      el('path', { d, fill: 'none', stroke: color, 'stroke-width': '1.8', 'stroke-linejoin': 'round', 'stroke-linecap': 'round' }, svg);
      s.values.forEach((v, i) => {
        if (v === null || v === undefined || !isFinite(v) || v === 0) return;
        const c = el('circle', { cx: x(i), cy: y(v), r: '2.2', fill: color }, svg);
        el('title', {}, c).textContent = `${clock(times[i])} ${s.name}: ${fmt(v)}`;
      });
    });
    const last = opts.series.map((s) => `${s.name} ${fmt(s.values[n - 1] ?? 0)}`).join(', ');
    svg.setAttribute('aria-label', label.concat(`latest ${last}`).join(': '));
  }

  window.LgCharts = { lineChart };
})();
