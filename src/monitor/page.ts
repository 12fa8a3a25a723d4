/**
 * The monitor's web page: plain HTML and one inline script, no build step and nothing
 * fetched from elsewhere (hosts without internet access must render it). The script polls
 * `/api/containers` every second and draws one inline-SVG line chart per container and
 * resource: CPU % (from two CPU-time counters), working set, tasks, block IO rate.
 * Each chart's polyline carries `data-values`, the plotted numbers, for tests and scrapers.
 * @internal
 */

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
#status { color: #666; margin-bottom: 1em; }
.container { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .8em 1em; margin-bottom: 1em; }
.container h2 { font-size: 1.05em; margin: 0 0 .5em; font-family: ui-monospace, monospace; }
.container h2 small { color: #777; font-weight: normal; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.chart { width: 260px; }
.chart .title { display: flex; justify-content: space-between; font-size: .9em; color: #444; }
.chart .scale { font-size: .8em; color: #888; text-align: right; min-height: 1.1em; }
.chart .value { font-weight: bold; font-family: ui-monospace, monospace; }
.chart svg { width: 260px; height: 90px; background: #f4f7fb; border: 1px solid #e0e6ef; }
.empty { color: #777; }
`;

// Written without template literals so that it can live inside this one.
const SCRIPT = `
(function () {
  var HISTORY = 60;
  var COLORS = { cpu: '#d9480f', memory: '#1971c2', pids: '#2f9e44', io: '#7048e8' };
  var TITLES = { cpu: 'CPU', memory: 'Memory (working set)', pids: 'Tasks', io: 'Block IO' };
  var state = {};
  var ns = 'http://www.w3.org/2000/svg';

  function fmtBytes(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(2) + ' GiB';
    if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MiB';
    if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
    return Math.round(n) + ' B';
  }
  var FORMAT = {
    cpu: function (v) { return v.toFixed(1) + ' %'; },
    memory: fmtBytes,
    pids: function (v) { return String(Math.round(v)); },
    io: function (v) { return fmtBytes(v) + '/s'; }
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function card(c) {
    var box = el('section', 'container');
    box.dataset.id = c.id;
    var h = el('h2', null, c.name + ' ');
    h.appendChild(el('small', null, c.id.slice(0, 12) + (c.image ? ' \\u00b7 ' + c.image : '')));
    box.appendChild(h);
    var charts = el('div', 'charts');
    var parts = {};
    ['cpu', 'memory', 'pids', 'io'].forEach(function (m) {
      var chart = el('div', 'chart');
      chart.dataset.metric = m;
      var title = el('div', 'title');
      title.appendChild(el('span', null, TITLES[m]));
      var value = el('span', 'value', '\\u2013');
      title.appendChild(value);
      chart.appendChild(title);
      var svg = document.createElementNS(ns, 'svg');
      svg.setAttribute('viewBox', '0 0 260 90');
      svg.setAttribute('preserveAspectRatio', 'none');
      var area = document.createElementNS(ns, 'polygon');
      area.setAttribute('fill', COLORS[m]);
      area.setAttribute('fill-opacity', '0.15');
      svg.appendChild(area);
      var line = document.createElementNS(ns, 'polyline');
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', COLORS[m]);
      line.setAttribute('stroke-width', '2');
      line.setAttribute('data-values', '[]');
      svg.appendChild(line);
      chart.appendChild(svg);
      charts.appendChild(chart);
      var scale = el('div', 'scale');
      chart.appendChild(scale);
      parts[m] = { line: line, area: area, value: value, scale: scale, values: [] };
    });
    box.appendChild(charts);
    return { box: box, parts: parts, prev: undefined };
  }

  // Newest point at the right edge; the y scale is fixed where the resource has a natural
  // ceiling (100 % of a CPU, the memory limit), else 25 % above the highest value shown.
  function draw(part, v, format, ceiling) {
    part.values.push(v);
    if (part.values.length > HISTORY) part.values.shift();
    var top = ceiling || Math.max.apply(null, part.values) * 1.25 || 1;
    var n = part.values.length;
    var pts = part.values.map(function (x, i) {
      return (260 - (n - 1 - i) * 260 / (HISTORY - 1)).toFixed(1) + ',' + (88 - Math.min(x / top, 1) * 84).toFixed(1);
    });
    part.line.setAttribute('points', pts.join(' '));
    part.area.setAttribute('points', pts.join(' ') + ' 260,90 ' + pts[0].split(',')[0] + ',90');
    part.line.setAttribute('data-values', JSON.stringify(part.values));
    part.value.textContent = format(v);
    part.scale.textContent = ceiling ? 'of ' + format(ceiling) : '';
  }

  function update(data) {
    var list = document.getElementById('containers');
    var seen = {};
    data.containers.forEach(function (c) {
      seen[c.id] = true;
      var s = state[c.id];
      if (!s) {
        s = state[c.id] = card(c);
        list.appendChild(s.box);
      }
      if (c.cpuUsageSeconds === undefined || c.cpuUsageSeconds === null) {
        s.box.classList.add('empty');
        return; // no cgroup: nothing to chart
      }
      var io = (c.io || []).reduce(function (a, d) { return a + d.readBytes + d.writeBytes; }, 0);
      var p = s.prev;
      var dt = p ? (c.timestampMs - p.t) / 1000 : 0;
      if (p && dt > 0) {
        draw(s.parts.cpu, Math.max(0, 100 * (c.cpuUsageSeconds - p.cpu) / dt), FORMAT.cpu, 100);
        draw(s.parts.io, Math.max(0, (io - p.io) / dt), FORMAT.io);
      }
      draw(s.parts.memory, c.memoryWorkingSetBytes || 0, FORMAT.memory, c.memoryLimitBytes);
      draw(s.parts.pids, c.threads || 0, FORMAT.pids);
      s.prev = { t: c.timestampMs, cpu: c.cpuUsageSeconds, io: io };
    });
    Object.keys(state).forEach(function (id) {
      if (!seen[id]) { state[id].box.remove(); delete state[id]; }
    });
    document.getElementById('status').textContent = data.containers.length + ' running container(s), updated ' + new Date(data.timestampMs).toLocaleTimeString();
  }

  function poll() {
    fetch('api/containers', { cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(update)
      .catch(function (e) { document.getElementById('status').textContent = 'monitor unreachable: ' + e; })
      .finally(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
`;

/** The page served at `/`. @internal */
export function monitorPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ctrkit monitor</title>
<style>${STYLE}</style>
</head>
<body>
<h1>ctrkit monitor</h1>
<div id="status">loading…</div>
<div id="containers"></div>
<p class="empty">Prometheus metrics (cAdvisor names): <a href="metrics">/metrics</a> · JSON: <a href="api/containers">/api/containers</a></p>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
