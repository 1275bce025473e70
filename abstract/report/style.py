"""The report's stylesheet, inlined into every HTML file (kept in Python so packaging never loses it)."""

CSS = """
:root { --ink:#1d2330; --muted:#5f6673; --line:#e2e5ea; --bg:#f6f7f9; --card:#fff;
        --pass:#1f7a3d; --pass-bg:#e3f4e8; --fail:#b42318; --fail-bg:#fde8e6; --warn:#9a6700; --warn-bg:#fff4d6; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0; }
h4 { font-size: 14px; margin: 18px 0 8px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
                   font-size: 12.5px; }
a { color: #1f5fbf; text-decoration: none; } a:hover { text-decoration: underline; }
header.top { display:flex; justify-content:space-between; align-items:flex-start; gap:24px;
             background:var(--card); border:1px solid var(--line); border-radius:10px; padding:20px 24px; }
.sub { color: var(--muted); }
.badge { display:inline-block; font-weight:700; border-radius:6px; padding:2px 9px; font-size:12px;
         letter-spacing:.04em; }
.badge.pass { color:var(--pass); background:var(--pass-bg); }
.badge.fail { color:var(--fail); background:var(--fail-bg); }
.badge.unknown { color:var(--warn); background:var(--warn-bg); }
.verdict { font-size: 26px; padding: 6px 18px; border-radius: 8px; }
.counts { margin-top: 10px; display:flex; gap:18px; flex-wrap:wrap; }
.counts b { font-size: 16px; }
table { border-collapse: collapse; width: 100%; background: var(--card); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
td.nowrap, .nowrap { white-space: nowrap; }
td.why { min-width: 160px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv { width:auto; }
table.kv th { background:none; padding-right:18px; }
table.kv td { font-variant-numeric: tabular-nums; }
.runinfo { margin-top: 16px; display:grid; grid-template-columns: minmax(300px, auto) minmax(300px, auto);
           gap: 3px 32px; }
.runinfo div { font-size: 13px; } .runinfo span { color: var(--muted); display:inline-block; min-width: 92px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 22px; margin: 16px 0; }
.card.failed { border-left: 5px solid var(--fail); } .card.passed { border-left: 5px solid var(--pass); }
.card-head { display:flex; align-items:center; gap:12px; flex-wrap:wrap; }
.meta { color: var(--muted); font-size: 13px; margin: 4px 0 0; }
.var { display:flex; gap: 26px; flex-wrap: wrap; align-items:flex-start; border-top:1px dashed var(--line);
       padding-top: 14px; margin-top: 14px; }
.var:first-of-type { border-top: none; }
.var .fig { flex: 0 0 auto; } .var .facts { flex: 1 1 360px; min-width: 320px; }
.caption { color: var(--muted); font-size: 12px; max-width: 340px; }
.bar { display:inline-block; height: 8px; background: #2c6fb7; border-radius: 2px; vertical-align: middle; }
.bar.ctl { background: #a9b0bb; }
.graphs { display:flex; gap: 18px; flex-wrap: wrap; }
.graphs .card { margin: 0; flex: 1 1 calc(50% - 9px); min-width: 340px; overflow-x: auto; }
.legend span { display:inline-block; width: 12px; height: 12px; border-radius: 3px; vertical-align: -1px;
               margin: 0 4px 0 12px; border:1.5px solid; }
.cex { background: var(--fail-bg); border-radius: 4px; padding: 1px 6px; }
.errors { background: var(--fail-bg); border: 1px solid #f3b8b2; border-radius: 10px; padding: 10px 18px; }
tr.fail td:first-child { box-shadow: inset 3px 0 0 var(--fail); }
details summary { cursor: pointer; color: var(--muted); margin: 8px 0; }
pre.spec { background: var(--card); border:1px solid var(--line); border-radius:10px; padding: 12px 0;
           overflow-x:auto; margin:0; }
pre.spec .l { display:block; padding: 0 14px 0 0; white-space: pre; }
pre.spec .l:target, pre.spec .l.hit { background: #fff4d6; }
pre.spec .l.bad { background: var(--fail-bg); }
pre.spec .n { display:inline-block; width: 46px; padding-right: 12px; margin-right: 12px; text-align:right;
              color:#9aa1ad; border-right: 1px solid var(--line); user-select: none; }
pre.spec .c { color: #6b7280; }
pre.spec .k { color: #7c3aed; font-weight: 600; } pre.spec .nd { color: #0f766e; font-weight: 600; }
pre.spec .nf { color: #1d4ed8; } pre.spec .m { color: #b45309; } pre.spec .s { color: #15803d; }
svg.graph { max-width: 100%; height: auto; }
td.check { min-width: 210px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
svg .axis { font-size: 11px; fill: #5f6673; }
svg .tok { font-size: 12px; fill: #1d2330; font-family: ui-monospace, Menlo, Consolas, monospace; }
svg .val { font-size: 13px; font-weight: 600; } svg .mean { font-size: 10px; opacity: .85; }
svg .tick { font-size: 10px; fill: #5f6673; }
svg .triv { font-size: 10px; font-weight: 700; }
.tag { display:inline-block; font-size: 11px; font-weight: 700; border-radius: 4px; padding: 0 6px; margin-left: 6px; }
.tag.trivial { color: var(--warn); background: var(--warn-bg); }
.note { background: var(--warn-bg); border-radius: 6px; padding: 4px 8px; margin: 8px 0 0; font-size: 13px; }
td.dn, th.dn { color: var(--muted); }
svg .node { font-size: 13px; font-weight: 600; fill: #1d2330; } svg .dom { font-size: 11px; fill: #5f6673; }
.training, .failing { flex: 1 1 100%; }
.curves { display:flex; flex-wrap:wrap; gap: 14px; margin-top: 6px; }
.seedfig { flex: 0 0 auto; max-width: 250px; } .seedfig .meta { font-size: 12px; }
.warn { color: var(--fail); font-weight: 600; }
table.pairs { margin-top: 6px; } table.pairs td.fail { color: var(--fail); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } .card, header.top { break-inside: avoid; } }
"""
