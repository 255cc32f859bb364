/* slimforge report: draws the charts embedded as JSON (#report-data) as inline SVG.
   Hand-written on purpose: the page must work offline, so it loads no library and makes no request.
   Every string from the run reaches the page through textContent, never as markup. */
(function () {
  "use strict";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var W = 640, H = 400, M = { l: 66, r: 18, t: 30, b: 46 };
  var RADIUS = { dots: 3, front: 4.5, line: 2.5, marks: 6 };

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function label(parent, x, y, s, attrs) {
    var node = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    node.textContent = s;
    return node;
  }

  function html(tag, className, textValue) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (textValue !== undefined) node.textContent = textValue;
    return node;
  }

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  function fmt(v) {
    if (!isNum(v)) return "-";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }

  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v < lo) lo = v; if (v > hi) hi = v; });
    if (lo === hi) { var d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    var pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }

  function ticks(lo, hi, n) {
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  function place(tip, ev) {
    var box = tip.parentNode.getBoundingClientRect();
    var x = ev.clientX - box.left + 14;
    if (x + tip.offsetWidth > box.width) x = Math.max(0, x - tip.offsetWidth - 28);
    tip.style.left = x + "px";
    tip.style.top = (ev.clientY - box.top + 10) + "px";
  }

  function hover(node, lines, tip) {
    node.addEventListener("mouseenter", function (ev) {
      tip.textContent = lines.join("\n");
      tip.style.display = "block";
      place(tip, ev);
    });
    node.addEventListener("mousemove", function (ev) { place(tip, ev); });
    node.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  }

  function drawSeries(svg, s, sx, sy, tip) {
    var pts = s.points.filter(function (p) { return isNum(p.x) && isNum(p.y); });
    if (!pts.length) return;
    var g = el("g", { "data-series": s.name }, svg);
    var opacity = s.faded ? 0.55 : 0.9;
    if (s.style === "front" || s.style === "line") {
      var sorted = pts.slice().sort(function (a, b) { return a.x - b.x; });
      var d = "M" + sx(sorted[0].x) + " " + sy(sorted[0].y);
      for (var i = 1; i < sorted.length; i++) {
        // a front is an attainment staircase (both axes minimised): across, then down
        d += s.style === "front"
          ? " H" + sx(sorted[i].x) + " V" + sy(sorted[i].y)
          : " L" + sx(sorted[i].x) + " " + sy(sorted[i].y);
      }
      el("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 1.6, opacity: opacity }, g);
    }
    var r = RADIUS[s.style] || 3;
    pts.forEach(function (p) {
      var x = sx(p.x), y = sy(p.y), node;
      if (s.style === "marks") {
        var diamond = "M" + x + " " + (y - r) + " L" + (x + r) + " " + y + " L" + x + " " + (y + r) + " L" + (x - r) + " " + y + " Z";
        node = el("path", { d: diamond, fill: s.color, stroke: "#000", "stroke-width": 0.7 }, g);
        // labels right of the point, or left of it in the right half so they stay inside the plot
        if (p.label) {
          var right = x < (M.l + W - M.r) / 2;
          label(g, right ? x + r + 3 : x - r - 3, y - r, p.label, { "text-anchor": right ? "start" : "end" });
        }
      } else {
        node = el("circle", { cx: x, cy: y, r: r, fill: s.color, opacity: opacity }, g);
      }
      node.setAttribute("class", "pt");
      if (p.tip && p.tip.length) hover(node, p.tip, tip);
    });
  }

  function legend(holder, series) {
    var div = html("div", "legend");
    series.forEach(function (s) {
      var n = s.points.filter(function (p) { return isNum(p.x) && isNum(p.y); }).length;
      if (!n) return;
      var item = html("span"), swatch = html("i");
      swatch.style.background = s.color;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(s.name + " (" + n + ")"));
      div.appendChild(item);
    });
    holder.appendChild(div);
  }

  function draw(holder, spec, tip) {
    holder.textContent = "";
    var pts = [];
    spec.series.forEach(function (s) {
      s.points.forEach(function (p) { if (isNum(p.x) && isNum(p.y)) pts.push(p); });
    });
    if (!pts.length) { holder.appendChild(html("p", "note", "no points to plot")); return; }
    var xs = pts.map(function (p) { return p.x; }), ys = pts.map(function (p) { return p.y; });
    if (spec.diagonal) { xs = xs.concat(ys); ys = xs; }
    var xr = extent(xs), yr = extent(ys);
    var sx = function (v) { return M.l + (v - xr[0]) / (xr[1] - xr[0]) * (W - M.l - M.r); };
    var sy = function (v) { return H - M.b - (v - yr[0]) / (yr[1] - yr[0]) * (H - M.t - M.b); };
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, "class": "plot", role: "img" }, holder);
    el("title", {}, svg).textContent = spec.title;
    label(svg, M.l, 18, spec.title, { "class": "title" });
    ticks(xr[0], xr[1], 6).forEach(function (v) {
      el("line", { x1: sx(v), x2: sx(v), y1: M.t, y2: H - M.b, "class": "grid" }, svg);
      label(svg, sx(v), H - M.b + 15, fmt(v), { "text-anchor": "middle" });
    });
    ticks(yr[0], yr[1], 6).forEach(function (v) {
      el("line", { x1: M.l, x2: W - M.r, y1: sy(v), y2: sy(v), "class": "grid" }, svg);
      label(svg, M.l - 6, sy(v) + 4, fmt(v), { "text-anchor": "end" });
    });
    el("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: "none", "class": "axis" }, svg);
    var midY = (M.t + H - M.b) / 2;
    label(svg, (M.l + W - M.r) / 2, H - 8, spec.xlabel, { "text-anchor": "middle" });
    label(svg, 14, midY, spec.ylabel, { "text-anchor": "middle", transform: "rotate(-90 14 " + midY + ")" });
    if (spec.diagonal) {
      el("line", { x1: sx(xr[0]), y1: sy(xr[0]), x2: sx(xr[1]), y2: sy(xr[1]), stroke: "#888", "stroke-dasharray": "5 4" }, svg);
    }
    spec.series.forEach(function (s) { drawSeries(svg, s, sx, sy, tip); });
    legend(holder, spec.series);
  }

  function tipLines(spec, r) {
    var lines = [r.arch];
    spec.fields.forEach(function (f, i) { lines.push(f + ": " + fmt(r.v[i])); });
    if (r.feasible) lines.push("feasible");
    else lines.push("infeasible (violation " + fmt(r.violation) + " of " + Object.keys(r.c).join("; ") + ")");
    if (r.front) lines.push("on the front");
    if (r.chosen.length) lines.push("chosen as " + r.chosen.join(", "));
    return lines;
  }

  // The xy chart of a search's records on two chosen metrics; mirrors front_xy in _charts.py.
  function frontSpec(spec, xName, yName) {
    var ix = spec.fields.indexOf(xName), iy = spec.fields.indexOf(yName);
    var staircase = [xName, yName].sort().join("\n") === spec.objectives.slice().sort().join("\n");
    var groups = { infeasible: [], feasible: [], front: [], chosen: [] };
    spec.records.forEach(function (r) {
      var x = r.v[ix], y = r.v[iy];
      if (!isNum(x) || !isNum(y)) return;
      var tip = tipLines(spec, r);
      groups[!r.feasible ? "infeasible" : r.front ? "front" : "feasible"].push({ x: x, y: y, tip: tip });
      if (r.chosen.length) groups.chosen.push({ x: x, y: y, tip: tip, label: r.chosen.join(", ") });
    });
    var c = spec.colors;
    return {
      title: spec.title, xlabel: xName, ylabel: yName, diagonal: false,
      series: [
        { name: "infeasible", style: "dots", color: c.infeasible, faded: true, points: groups.infeasible },
        { name: "feasible", style: "dots", color: c.feasible, points: groups.feasible },
        { name: "front", style: staircase ? "front" : "dots", color: c.front, points: groups.front },
        { name: "chosen", style: "marks", color: c.chosen, points: groups.chosen }
      ]
    };
  }

  function setupFront(box, spec, tip) {
    var bar = html("div", "axes-select"), holder = html("div"), selects = {};
    ["x", "y"].forEach(function (axis) {
      var lab = html("label", "", axis + " axis"), sel = html("select");
      sel.setAttribute("data-axis", axis);
      spec.fields.forEach(function (f) {
        var option = html("option", "", f);
        option.value = f;
        sel.appendChild(option);
      });
      sel.value = spec[axis];
      sel.addEventListener("change", redraw);
      lab.appendChild(sel);
      bar.appendChild(lab);
      selects[axis] = sel;
    });
    box.insertBefore(bar, tip);
    box.insertBefore(holder, tip);
    function redraw() { draw(holder, frontSpec(spec, selects.x.value, selects.y.value), tip); }
    redraw();
  }

  function main() {
    var data = JSON.parse(document.getElementById("report-data").textContent);
    document.querySelectorAll("figure.chart[data-chart]").forEach(function (box) {
      var id = box.getAttribute("data-chart"), spec = data.charts[id];
      box.textContent = "";
      var tip = html("div", "tooltip");
      box.appendChild(tip);
      try {
        if (!spec) throw new Error("no data for chart " + id);
        if (spec.kind === "front") {
          setupFront(box, spec, tip);
        } else {
          var holder = html("div");
          box.insertBefore(holder, tip);
          draw(holder, spec, tip);
        }
      } catch (err) {
        box.appendChild(html("p", "missing", "this plot could not be drawn: " + err.message));
        console.error(err);
      }
    });
  }

  main();
})();
