"""The page's look in one place: the CSS of the charts and of the verdict card, and the page header."""
from __future__ import annotations

# The page-wide CSS of these charts and cards, injected once by the layout (gr.HTML applies a <style> it
# holds to the whole page, which also works when a test launches the app without launch(css=...)).
# Its first rules override Gradio's default theme (issue 20, item 7): secondary grey #bbbbc2 (1.9:1 on white) and
# the orange Start button (2.8:1) fail WCAG AA's 4.5:1; the darker values are checked in tests/test_theme.py.
# The web font never loads offline, and its fallback drew "CIFᴀR": a system font stack instead.
STYLE = """<style>
:root,:root .gradio-container{--body-text-color-subdued:#595966;--color-accent:#c2410c;--button-primary-background-fill:#c2410c;--button-primary-background-fill-hover:#9a3412;--button-primary-border-color:#c2410c;--button-primary-text-color:#fff;--button-cancel-background-fill:#b91c1c;--button-cancel-background-fill-hover:#991b1b;--button-cancel-border-color:#b91c1c;--button-cancel-text-color:#fff;--font:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Liberation Sans",Arial,sans-serif;--font-mono:ui-monospace,"SFMono-Regular","DejaVu Sans Mono","Liberation Mono",Menlo,Consolas,monospace}
:root.dark,:root .dark{--body-text-color-subdued:#b4b4bf;--color-accent:#fb923c}
.gradio-container,.gradio-container button,.gradio-container input,.gradio-container textarea,.gradio-container select{font-family:var(--font)}
footer,footer a,footer button{color:var(--body-text-color-subdued)!important}
.cc-sr{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
/* The confusion matrices' region (compare/views.py) scrolls sideways where they do not fit; it is a tab stop
   (tabindex=0) so a keyboard can scroll it, and shows where the focus is. On a phone they also shrink. */
.cc-scroll:focus-visible{outline:2px solid var(--color-accent);outline-offset:2px}
@media (max-width:560px){.cc-chart table td{padding:1px 2px!important}.cc-chart>.cc-scroll table{zoom:.8}}
/* The slots above the Preset radio hold nothing unless a link or public mode fills them (compare/layout.py):
   empty, they take no room (they left a ~90 px gap). */
#link-note:not(:has(.cc-card)),#public-panel-box:not(:has(.cc-card)){display:none!important}
.cc-h2{font-size:17px!important;font-weight:600!important;margin:4px 0 2px!important;line-height:1.3!important}
.cc-card{border:1px solid var(--border-color-primary);border-radius:10px;padding:12px 16px;background:var(--block-background-fill);color:var(--body-text-color);font-size:14px;line-height:1.45}
.cc-status{font-size:13px;line-height:1.5;padding:2px 4px;color:var(--body-text-color)}
.cc-chart{font-size:13px;color:var(--body-text-color);padding:10px 12px;border:1px solid var(--border-color-primary);border-radius:8px;background:var(--block-background-fill)}
.cc-title{font-weight:600;font-size:14px;margin-bottom:2px}
.cc-sub{color:var(--body-text-color-subdued);font-size:12px;margin-bottom:6px}
.cc-legend{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12px;margin:2px 0 6px}
.cc-legend span{white-space:nowrap}
.cc-sw{display:inline-block;width:18px;height:0;border-top:3px solid;vertical-align:middle;margin-right:5px}
.cc-sw.box{width:11px;height:11px;border:0;vertical-align:-1px}
/* Two classes: Gradio's ".gradio-container-6-… svg{display:block}" would put each label under its key. */
.cc-legend .cc-key{display:inline-block;vertical-align:middle;margin-right:5px}
/* The plot's margins hold its labels inside the card: y ticks (and the y-axis title, .has-y) on the left,
   x ticks and the x-axis title below; the last x tick is right-aligned (charts.py) so none hangs out right. */
.cc-plot{position:relative;margin:8px 10px 34px 46px}
.cc-plot.has-y{margin-left:66px}
.cc-plot svg{position:absolute;left:0;top:0;width:100%;height:100%;overflow:visible}
.cc-plot .grid{stroke:var(--border-color-primary);stroke-width:1}
.cc-plot .sep{stroke:var(--body-text-color-subdued);stroke-width:1;stroke-dasharray:4 4}
.cc-plot .hover{fill:transparent}
.cc-plot .hover:hover{fill:var(--border-color-primary);fill-opacity:.6}
.cc-yt,.cc-xt,.cc-xl,.cc-sl,.cc-yl{position:absolute;font-size:11px;color:var(--body-text-color-subdued);white-space:nowrap}
.cc-yt{right:calc(100% + 6px);transform:translateY(-50%)}
.cc-xt{top:calc(100% + 4px);transform:translateX(-50%)}
.cc-xt.end{transform:translateX(-100%)}
.cc-xl{top:calc(100% + 18px);left:50%;transform:translateX(-50%)}
.cc-yl{top:50%;left:-64px;writing-mode:vertical-rl;transform:translateY(-50%) rotate(180deg);line-height:1;max-height:100%;overflow:hidden;text-overflow:ellipsis}
.cc-sl{top:-2px;transform:translateX(4px)}
.cc-sl.end{transform:translateX(calc(-100% - 4px))}
.cc-empty{display:flex;align-items:center;justify-content:center;text-align:center;border:1px dashed var(--border-color-primary);border-radius:6px;color:var(--body-text-color-subdued);padding:8px;font-size:13px}
.cc-rows{display:grid;column-gap:10px;row-gap:2px;align-items:center;overflow-y:auto}
.cc-rows.two{grid-template-columns:minmax(5.5em,9em) minmax(80px,1fr)}
.cc-rows.three{grid-template-columns:minmax(5.5em,9em) minmax(80px,1fr) minmax(78px,.65fr)}
.cc-head .cc-legend span{white-space:normal}
.cc-rows.wide .cc-bar b,.cc-rows.wide .cc-axis b{flex-basis:3.3em}
@media (max-width:560px){
 .cc-rows.two,.cc-rows.three{column-gap:6px}
 .cc-rows.three{grid-template-columns:5.6em minmax(70px,1fr) minmax(70px,.8fr)}
 .cc-bar b,.cc-diff b,.cc-axis b{flex-basis:2.1em}
 .cc-chart{padding:8px}
 .cc-plot{margin-left:40px;margin-right:6px}
 .cc-plot.has-y{margin-left:56px}
 .cc-plot.has-y .cc-yl{left:-54px}
 /* The two per-epoch charts share a row (compare/layout.py); on a phone that left each 155 px wide, where no
    axis label fits: one per line instead (the row wraps). */
 #test-loss-chart,#accuracy-chart{min-width:100%!important}
 .cc-rows.wide .cc-bar b,.cc-rows.wide .cc-axis b{flex-basis:3em}
 .cc-tagline{display:none}
 /* The verdict headline on the first phone screen (issue 31: it started at y = 810 of 844): the settings
    above it take less height. The preset choices sit closer, and the Stop button's label stays one line. */
 #preset .wrap{gap:4px!important}
 #preset label{padding:4px 8px!important;min-height:0!important}
 #preset-note p{font-size:13px;line-height:1.35}
 #start,#stop{min-height:36px;padding:6px 8px!important;font-size:14px}
}
.cc-head{font-size:11px;color:var(--body-text-color-subdued);padding-bottom:2px;border-bottom:1px solid var(--border-color-primary)}
.cc-group{grid-column:1/-1;font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.04em;color:var(--body-text-color-subdued);margin-top:6px}
.cc-label{font-size:12px;line-height:1.2;padding:2px 0}
.cc-label small{display:block;font-size:11px;color:var(--body-text-color-subdued)}
.cc-bar,.cc-diff{display:flex;align-items:center;gap:4px;height:12px}
.cc-track{position:relative;flex:1;height:10px;background:linear-gradient(to right,transparent calc(50% - .5px),var(--border-color-primary) calc(50% - .5px),var(--border-color-primary) calc(50% + .5px),transparent calc(50% + .5px))}
.cc-track i{position:absolute;top:0;bottom:0;left:0;border-radius:0 2px 2px 0}
.cc-track i.hatch{background-image:repeating-linear-gradient(45deg,rgba(255,255,255,.55) 0 3px,transparent 3px 6px)!important}
.cc-track.zero{border-left:3px solid #b91c1c}
.cc-bar b,.cc-diff b{flex:0 0 2.6em;text-align:right;font-size:11px;font-weight:500;font-variant-numeric:tabular-nums}
.cc-bar b.zero{color:#b91c1c;font-weight:700}
.cc-dtrack{position:relative;flex:1;height:10px;background:linear-gradient(to right,transparent calc(50% - 1px),var(--body-text-color-subdued) calc(50% - 1px),var(--body-text-color-subdued) calc(50% + 1px),transparent calc(50% + 1px))}
.cc-dtrack i{position:absolute;top:1px;bottom:1px}
.cc-dtrack u{position:absolute;top:4px;height:2px;background:var(--body-text-color);text-decoration:none}
.cc-axis{display:flex;gap:4px;font-size:10px;color:var(--body-text-color-subdued)}
.cc-axis span{position:relative;flex:1;height:12px}
.cc-axis span em{position:absolute;transform:translateX(-50%);font-style:normal}
.cc-axis b{flex:0 0 2.6em}
.cc-progress{height:10px;border-radius:5px;background:var(--border-color-primary);overflow:hidden;margin:6px 0 4px}
.cc-progress i{display:block;height:100%;background:var(--color-accent);border-radius:5px;transition:width .6s}
.cc-progress.queued i{background:var(--body-text-color-subdued)}
</style>"""


VERDICT_STYLE = """<style>
#verdict .cc-vh{display:flex;flex-wrap:wrap;gap:4px 10px;align-items:baseline;margin-bottom:6px}
#verdict .cc-vh b.who{font-size:15px}
#verdict .cc-chip{font-size:12px;padding:1px 8px;border-radius:10px;background:var(--border-color-primary)}
#verdict .cc-vi{border-left:4px solid;padding:4px 0 4px 12px;margin:8px 0}
#verdict .cc-vn{font-size:20px;font-weight:700;line-height:1.25}
#verdict .cc-vn small{font-size:13px;font-weight:400;color:var(--body-text-color-subdued)}
#verdict .cc-vs{margin:4px 0 0}
#verdict .cc-vx{margin:4px 0 0;font-size:12.5px;color:var(--body-text-color-subdued)}
</style>"""


HEADER = """<div style="display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 14px">
<h1 style="margin:0;font-size:clamp(18px,4.6vw,24px)">Complement Cross Entropy vs Cross Entropy on long-tailed CIFAR</h1>
<span class="cc-tagline" style="color:var(--body-text-color-subdued);font-size:13px">Both losses train as a <i>paired</i> run (same initial
weights, same batches, only the loss differs); results are reported as they come out.</span></div>"""


# The Runs table's columns (catalog.TABLE_COLUMNS, in order) as shares of the page width: together 100 %, so
# the table fits at 1,400 px with both Δ columns in view. The long texts (run id, scores, Δ) get the room.
RUNS_COLUMN_WIDTHS = ("19%", "8%", "6%", "8%", "7%", "5%", "4%", "12%", "11%", "11%", "9%")
# On a phone only the key columns stay (Gradio 6 draws the header as <th> and the rows as a virtual list of
# .body-cell <div>s): run (1), status (2), balanced accuracy (8) and the Δ columns (9, 10).
RUNS_PHONE_HIDDEN_COLUMNS = (3, 4, 5, 6, 7, 11)
# The kept columns' shares on a phone (header and rows alike, or the rows keep the desktop widths).
RUNS_PHONE_COLUMN_WIDTHS = ((1, "30%"), (2, "14%"), (8, "20%"), (9, "18%"), (10, "18%"))
RUNS_STYLE = ("<style>#runs-table table,#runs-table .body-cell,#runs-table .body-cell *{font-family:var(--font);font-size:13px}"
              "#runs-table th,#runs-table td,#runs-table .body-cell{overflow-wrap:break-word}"
              "@media (max-width:560px){"
              + ",".join(f"#runs-table th:nth-child({n}),#runs-table td:nth-child({n}),#runs-table .virtual-row>.body-cell:nth-child({n})"
                         for n in RUNS_PHONE_HIDDEN_COLUMNS)
              + "{display:none}"
              + "".join(f"#runs-table th:nth-child({n}),#runs-table .virtual-row>.body-cell:nth-child({n})"
                        f"{{width:{share}!important;min-width:0!important;max-width:none!important;flex:0 0 {share}!important}}"
                        for n, share in RUNS_PHONE_COLUMN_WIDTHS)
              + "}</style>")
