/// The console's stylesheet and its one script, served by gustd itself
/// (`/static/…`): nothing comes from a CDN, and nothing is built with npm.
/// The script only adds to pages that work without it: the live log stream
/// and calling an op without leaving the page. It writes what it receives with
/// `textContent`, never as HTML.
enum ConsoleAssets {
    static let css = """
        :root { --fg: #1d232b; --muted: #5b6673; --line: #d9dee4; --bg: #f7f8fa; --card: #fff; --accent: #2f6fde; --bad: #c62828; --ok: #2e7d32; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header.top { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; padding: .6rem 1rem; background: #14181d; color: #fff; }
        header.top a { color: #fff; text-decoration: none; margin-right: .75rem; }
        header.top .brand { font-weight: 700; font-size: 1.1rem; }
        header.top .who { margin-left: auto; color: #b8c2cc; font-size: .9rem; }
        main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
        h1 { font-size: 1.5rem; margin: .5rem 0 1rem; word-break: break-all; }
        h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
        h3 { font-size: 1rem; margin: 0 0 .3rem; }
        a { color: var(--accent); }
        .scroll { overflow-x: auto; }
        table { width: 100%; border-collapse: collapse; background: var(--card); }
        th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); }
        td code { word-break: break-all; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; margin: .6rem 0; }
        .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: .6rem; }
        form.card label { display: block; margin: .3rem 0; }
        form.card label.check { display: inline-block; }
        input, textarea, button { font: inherit; }
        input, textarea { width: 100%; padding: .4rem; border: 1px solid var(--line); border-radius: 5px; }
        label.check input { width: auto; }
        textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
        button { padding: .4rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 5px; cursor: pointer; }
        header.top button { background: transparent; border-color: #6b7684; }
        button.danger { background: var(--bad); border-color: var(--bad); }
        form.inline { display: inline; }
        pre { background: #101418; color: #e6e9ec; padding: .8rem; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; font-size: .85rem; }
        pre.log { max-height: 70vh; overflow-y: auto; }
        .line.stderr { color: #ff9b9b; }
        .line.gustd { color: #9fc2ff; }
        .error { color: var(--bad); background: #fdecea; padding: .5rem .7rem; border-radius: 5px; }
        .notice { color: var(--ok); background: #e8f5e9; padding: .5rem .7rem; border-radius: 5px; }
        .bad { color: var(--bad); }
        .state { font-size: .8rem; padding: .05rem .4rem; border-radius: 4px; background: #e8eef9; }
        .state.crashing { background: #fdecea; color: var(--bad); }
        .tag { font-size: .75rem; background: #eee; padding: 0 .3rem; border-radius: 3px; }
        .spark { width: 90px; height: 20px; vertical-align: middle; color: var(--accent); }
        .hint { color: var(--muted); font-size: .85rem; }
        .runs li.error { color: var(--bad); }
        .activity { padding-left: 1rem; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dl.facts dd { margin: 0; word-break: break-all; }
        .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: .6rem; }
        figure.chart { margin: 0; }
        figure.chart svg { width: 100%; height: 90px; display: block; }
        .chart .axis { stroke: var(--line); stroke-width: 1; }
        .chart .series { stroke-width: 2; }
        .series.p50, .key.p50::before { stroke: #2f6fde; background: #2f6fde; }
        .series.p95, .key.p95::before { stroke: #f29f05; background: #f29f05; }
        .series.p99, .key.p99::before { stroke: #c62828; background: #c62828; }
        .series.busy, .key.busy::before { stroke: #2e7d32; background: #2e7d32; }
        .series.idle, .key.idle::before { stroke: #2f6fde; background: #2f6fde; }
        .series.starting, .key.starting::before { stroke: #f29f05; background: #f29f05; }
        .series.calls, .key.calls::before { stroke: #2f6fde; background: #2f6fde; }
        .series.errors, .key.errors::before { stroke: #c62828; background: #c62828; }
        .function h3 { margin: 0 0 .3rem; overflow-wrap: anywhere; }
        .function .charts .chart { box-shadow: none; }
        .chart rect.bar { fill: #2f6fde; }
        .legend { margin: .3rem 0 0; font-size: .85rem; }
        .key::before { content: ""; display: inline-block; width: .8rem; height: .25rem; margin-right: .25rem; vertical-align: middle; }
        select { font: inherit; width: 100%; padding: .4rem; }
        @media (max-width: 600px) {
          main { padding: .6rem; }
          th, td { padding: .35rem .4rem; font-size: .9rem; }
          .spark { width: 60px; }
          header.top .who { margin-left: 0; width: 100%; }
        }
        """

    static let javascript = """
        "use strict";
        (function () {
          function appendLine(log, entry) {
            var span = document.createElement("span");
            span.className = "line " + (entry.stream === "stderr" ? "stderr" : entry.stream === "gustd" ? "gustd" : "stdout");
            span.textContent = entry.text;
            log.appendChild(span);
            log.appendChild(document.createTextNode("\\n"));
            log.scrollTop = log.scrollHeight;
          }

          var log = document.getElementById("live-log");
          if (log && window.EventSource) {
            var state = document.getElementById("stream-state");
            var source = new EventSource(log.getAttribute("data-stream"));
            source.addEventListener("open", function () { if (state) { state.textContent = "Streaming: new lines appear as they are written."; } });
            source.addEventListener("message", function (event) {
              var entry;
              try { entry = JSON.parse(event.data); } catch (e) { return; }
              appendLine(log, entry);
            });
            source.addEventListener("error", function () { if (state) { state.textContent = "Stream interrupted; reconnecting…"; } });
          }

          var opForm = document.getElementById("op-form");
          if (opForm && window.fetch) {
            opForm.addEventListener("submit", function (event) {
              event.preventDefault();
              var answer = document.getElementById("op-answer");
              answer.hidden = false;
              answer.textContent = "Calling…";
              fetch(opForm.getAttribute("action"), {
                method: "POST",
                headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
                body: new URLSearchParams(new FormData(opForm)).toString(),
                credentials: "same-origin"
              }).then(function (response) { return response.json(); }).then(function (result) {
                answer.textContent = "Status " + result.status + "\\n" + result.body;
              }).catch(function (error) {
                answer.textContent = "The call failed: " + error;
              });
            });
          }
        })();
        """
}
