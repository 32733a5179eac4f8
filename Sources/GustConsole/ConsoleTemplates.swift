import Mustache

/// The console's pages as mustache templates, compiled into gustd (nothing is
/// read from disk at run time). Every value is written with `{{ }}`, which
/// HTML-escapes it; the triple mustache is never used: app names, log lines,
/// record fields and build output are all hostile to the admin's browser.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in sources {
            do { try library.register(text, named: name) } catch { fatalError("Console template \(name) does not parse: \(error)") }
        }
        return library
    }()

    static func render(_ page: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: page) ?? ""
    }

    static let sources: [String: String] = [
        "layout": layout, "login": login, "overview": overview, "app": app, "release": release, "logs": logs,
        "call": call, "records": records, "record": record, "activity": activity, "message": message,
        "token": token, "domains": domains, "charts": charts, "lineChart": lineChart,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{$title}}Gust{{/title}} · Gust console</title>
        <link rel="stylesheet" href="/static/console.css">
        <script src="/static/console.js" defer></script>
        </head>
        <body>
        <header class="top">
        <a class="brand" href="/">Gust</a>
        {{#signedIn}}
        <nav><a href="/">Apps</a> <a href="/domains">Domains</a> <a href="/activity">Activity</a></nav>
        <span class="who">{{scope}}</span>
        <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button>Sign out</button></form>
        {{/signedIn}}
        </header>
        <main>
        {{#flash}}<p class="notice" id="flash">{{flash}}</p>{{/flash}}
        {{#flashError}}<p class="error" id="flash-error" role="alert">{{flashError}}</p>{{/flashError}}
        {{$body}}{{/body}}
        </main>
        </body>
        </html>
        """

    static let login = """
        {{<layout}}{{$title}}Sign in{{/title}}{{$body}}
        <h1>Sign in</h1>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <form method="post" action="/login" class="card">
        <input type="hidden" name="csrf" value="{{loginCSRF}}">
        <label>Console token <input type="password" name="token" id="token" autocomplete="current-password" required></label>
        <button id="sign-in">Sign in</button>
        </form>
        <p class="hint">An admin creates tokens with <code>gust tokens create --console [--app APP]</code>.</p>
        {{/body}}{{/layout}}
        """

    static let overview = """
        {{<layout}}{{$title}}Apps{{/title}}{{$body}}
        <h1>Apps</h1>
        {{^apps}}<p>No apps yet. Push one: <code>git push gust main</code>.</p>{{/apps}}
        {{#hasApps}}
        <div class="scroll"><table class="apps" id="apps">
        <thead><tr><th>App</th><th>Live</th><th>Instances</th><th>Calls/min (30 min)</th><th>Errors</th><th>Last deploy</th><th>Schedules</th></tr></thead>
        <tbody>
        {{#apps}}
        <tr class="app-row" data-app="{{name}}">
        <td><a href="/apps/{{name}}">{{name}}</a></td>
        <td>{{live}} <span class="state {{stateClass}}">{{state}}</span></td>
        <td>{{instances}}</td>
        <td>{{callsPerMinute}} <svg class="spark" viewBox="0 0 120 24" preserveAspectRatio="none" aria-hidden="true"><polyline points="{{spark}}" fill="none" stroke="currentColor" stroke-width="1.5"/></svg></td>
        <td>{{errorRate}}</td>
        <td>{{lastDeploy}}</td>
        <td>{{#failing}}<span class="bad">{{.}} failing</span> {{/failing}}{{^failing}}{{schedules}}{{/failing}}</td>
        </tr>
        {{/apps}}
        </tbody></table></div>
        {{/hasApps}}
        <p class="hint">Rendered in {{renderMillis}} ms.</p>
        {{/body}}{{/layout}}
        """

    static let app = """
        {{<layout}}{{$title}}{{name}}{{/title}}{{$body}}
        <h1 id="app-name">{{name}}</h1>
        <p class="links"><a href="/apps/{{name}}/logs">Live logs and ops</a> · <a href="/apps/{{name}}/records">Records</a> · <a href="{{url}}">{{url}}</a></p>
        <p class="links" id="app-domains">Domains: {{#domains}}<code>{{.}}</code> {{/domains}}{{^domains}}none{{/domains}} · <a href="/domains">manage</a></p>
        <section class="grid">
        <div class="card"><h2>Live</h2>
        {{#live}}<p id="live-state">v{{version}} <span class="state {{stateClass}}">{{state}}</span>, <span id="live-instances">{{instances}}</span> instance(s)</p>{{#error}}<p class="error">{{error}}</p>{{/error}}{{/live}}
        {{^live}}<p>Nothing live yet.</p>{{/live}}
        <p>{{callsPerMinute}} calls/min, {{errorRate}} errors <svg class="spark" viewBox="0 0 120 24" preserveAspectRatio="none" aria-hidden="true"><polyline points="{{spark}}" fill="none" stroke="currentColor" stroke-width="1.5"/></svg></p>
        </div>
        </section>
        {{#charts}}{{> charts}}{{/charts}}
        <section class="grid">
        <form method="post" action="/apps/{{name}}/scale" class="card" id="scale">
        <h2>Scale</h2>
        <p>{{scale}}</p>
        <input type="hidden" name="csrf" value="{{csrf}}">
        {{#scaleForm}}
        <label>Min instances (0 scales to zero) <input name="min" id="scale-min" inputmode="numeric" value="{{min}}"></label>
        <label>Max instances <input name="max" id="scale-max" inputmode="numeric" value="{{max}}"></label>
        <label>Calls per Node instance <input name="concurrency" id="scale-concurrency" inputmode="numeric" value="{{concurrency}}"></label>
        <label>Idle before stopping (30s, 5m, 1h) <input name="idle" id="scale-idle" value="{{idle}}"></label>
        {{/scaleForm}}
        <button id="scale-save">Change scale</button>
        </form>
        <form method="post" action="/apps/{{name}}/limits" class="card" id="limits">
        <h2>Limits</h2>
        <p>{{limits}}</p>
        <input type="hidden" name="csrf" value="{{csrf}}">
        {{#limitsForm}}
        <label>Memory per instance (256M, 1G, default) <input name="memory" id="limits-memory" value="{{memory}}"></label>
        <label>CPU per instance (0.5, 2, default) <input name="cpu" id="limits-cpu" value="{{cpu}}"></label>
        <label>Processes per instance <input name="pids" id="limits-pids" value="{{pids}}"></label>
        <label>/tmp per instance <input name="tmp" id="limits-tmp" value="{{tmp}}"></label>
        <label>Disk (records, build cache) <input name="disk" id="limits-disk" value="{{disk}}"></label>
        {{/limitsForm}}
        <button id="limits-save">Change limits</button>
        <p class="hint">New instances get them; running ones keep theirs until they are replaced.</p>
        </form>
        </section>

        <h2>Functions</h2>
        <ul class="functions" id="functions">{{#ops}}<li><a href="/apps/{{app}}/logs?function={{query}}">op <code>{{name}}</code></a></li>{{/ops}}{{^ops}}<li>Known once an instance of the live release has started.</li>{{/ops}}</ul>

        <h2>Releases</h2>
        <div class="scroll"><table id="releases"><thead><tr><th>Release</th><th>Status</th><th>Commit</th><th>Description</th><th>Created</th><th></th></tr></thead><tbody>
        {{#releases}}
        <tr data-version="{{version}}"><td><a href="/apps/{{name}}/releases/{{version}}">v{{version}}</a></td><td>{{status}}</td><td><code>{{commit}}</code></td><td>{{description}}</td><td>{{created}}</td>
        <td>{{#canRollback}}<form method="post" action="/apps/{{name}}/rollback" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}"><button class="rollback" id="rollback-{{version}}">Roll back to v{{version}}</button></form>{{/canRollback}}</td></tr>
        {{/releases}}
        </tbody></table></div>

        <h2>Config</h2>
        <div class="scroll"><table id="config"><tbody>
        {{#config}}<tr><td><code>{{name}}</code></td><td><code>{{value}}</code>{{#secret}} <span class="tag">secret</span>{{/secret}}</td>
        <td><form method="post" action="/apps/{{app}}/config/unset" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="name" value="{{name}}"><button>Unset</button></form></td></tr>{{/config}}
        {{^config}}<tr><td>No config vars.</td></tr>{{/config}}
        </tbody></table></div>
        <form method="post" action="/apps/{{name}}/config" class="card" id="config-form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>Name <input name="name" id="config-name" required pattern="[A-Za-z_][A-Za-z0-9_]*"></label>
        <label>Value <input name="value" id="config-value"></label>
        <label class="check"><input type="checkbox" name="secret" value="1"> secret</label>
        <button id="config-set">Set and release</button>
        </form>

        <h2>Instances</h2>
        <div class="scroll"><table id="instances"><thead><tr><th>Id</th><th>Release</th><th>State</th><th>Served</th><th>Memory</th></tr></thead><tbody>
        {{#instances}}<tr><td><code>{{id}}</code></td><td>v{{release}}</td><td>{{state}}</td><td>{{served}}</td><td>{{memory}}</td></tr>{{/instances}}
        {{^instances}}<tr><td colspan="5">None running.</td></tr>{{/instances}}
        </tbody></table></div>

        <h2>Schedules</h2>
        {{^schedules}}<p>None.</p>{{/schedules}}
        {{#schedules}}
        <div class="card"><h3><code>{{name}}</code> {{spec}}</h3><p>next run: {{next}}</p>
        <ul class="runs">{{#runs}}<li class="{{statusClass}}">{{started}}: {{status}} {{seconds}} {{error}}</li>{{/runs}}{{^runs}}<li>No runs yet.</li>{{/runs}}</ul></div>
        {{/schedules}}

        <h2 id="tokens">Tokens</h2>
        <p class="hint">Callers send an app token as the <code>X-Auth-Token</code> header.</p>
        <div class="scroll"><table id="token-list"><thead><tr><th>Id</th><th>Description</th><th>State</th><th>Created</th><th>Expires</th><th></th></tr></thead><tbody>
        {{#tokens}}<tr data-token="{{id}}"><td>{{id}}</td><td>{{description}}</td><td>{{state}}</td><td>{{created}}</td><td>{{expires}}</td>
        <td>{{#active}}<form method="post" action="/apps/{{app}}/tokens/{{id}}/revoke" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" id="revoke-token-{{id}}">Revoke</button></form>{{/active}}</td></tr>{{/tokens}}
        {{^tokens}}<tr><td colspan="6">No app tokens.</td></tr>{{/tokens}}
        </tbody></table></div>
        <form method="post" action="/apps/{{name}}/tokens" class="card" id="token-form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>Description <input name="description" id="token-description" maxlength="200"></label>
        <label>Expires after (90d, 12h; blank: never) <input name="expires" id="token-expires"></label>
        <button id="token-create">Create token</button>
        </form>

        <h2>Activity</h2>
        <ul class="activity">{{#activity}}<li>{{at}} · {{actor}} ({{source}}) · <b>{{action}}</b> {{detail}}</li>{{/activity}}{{^activity}}<li>Nothing yet.</li>{{/activity}}</ul>
        {{/body}}{{/layout}}
        """

    static let release = """
        {{<layout}}{{$title}}{{name}} v{{version}}{{/title}}{{$body}}
        <h1><a href="/apps/{{name}}">{{name}}</a> v{{version}}</h1>
        <dl class="facts">{{#facts}}<dt>{{label}}</dt><dd>{{value}}</dd>{{/facts}}</dl>
        {{#canRollback}}<form method="post" action="/apps/{{name}}/rollback" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}"><button class="rollback" id="rollback">Roll back to v{{version}}</button></form>{{/canRollback}}
        <h2>Build log</h2>
        <pre class="log" id="build-log">{{log}}</pre>
        {{/body}}{{/layout}}
        """

    static let logs = """
        {{<layout}}{{$title}}{{name}} logs{{/title}}{{$body}}
        <h1><a href="/apps/{{name}}">{{name}}</a> logs</h1>
        <form method="get" action="/apps/{{name}}/logs" class="card">
        <label>Function <input name="function" id="function-filter" value="{{function}}" placeholder="op NAME, schedule NAME" list="functions"></label>
        <datalist id="functions">{{#functions}}<option value="{{.}}">{{/functions}}</datalist>
        <button>Filter</button>
        </form>
        <form method="post" action="/apps/{{name}}/call" class="card" id="op-form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>Op <input name="op" id="op-name" required list="ops" value="{{op}}"></label>
        <datalist id="ops">{{#ops}}<option value="{{.}}">{{/ops}}</datalist>
        <label>Arguments (JSON) <textarea name="args" id="op-args" rows="3">{{args}}</textarea></label>
        <button id="op-call">Call</button>
        <pre class="answer" id="op-answer" hidden></pre>
        </form>
        <pre class="log" id="live-log" data-stream="/apps/{{name}}/logs/stream?function={{functionQuery}}">{{#lines}}<span class="line {{stream}}">{{text}}</span>
        {{/lines}}</pre>
        <p class="hint" id="stream-state">New lines appear as they are written (needs JavaScript; without it, reload).</p>
        {{/body}}{{/layout}}
        """

    static let call = """
        {{<layout}}{{$title}}{{name}} op {{op}}{{/title}}{{$body}}
        <h1><a href="/apps/{{name}}">{{name}}</a>: op <code>{{op}}</code></h1>
        <p>Status {{status}}</p>
        <pre class="answer" id="op-answer">{{body}}</pre>
        <h2>Its log lines</h2>
        <pre class="log" id="op-log">{{#lines}}{{text}}
        {{/lines}}</pre>
        <p><a href="/apps/{{name}}/logs">Back to the logs</a></p>
        {{/body}}{{/layout}}
        """

    static let records = """
        {{<layout}}{{$title}}{{name}} records{{/title}}{{$body}}
        <h1><a href="/apps/{{name}}">{{name}}</a> records</h1>
        <p class="links">{{#types}}<a href="/apps/{{name}}/records?type={{.}}">{{.}}</a> {{/types}}{{^types}}No records yet.{{/types}}</p>
        <form method="get" action="/apps/{{name}}/records" class="card">
        <label>Type <input name="type" value="{{type}}" required></label>
        <label>Field <input name="field" value="{{field}}"></label>
        <label>Value <input name="value" value="{{value}}"></label>
        <button>Show</button>
        </form>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        {{#hasType}}
        <div class="scroll"><table id="records"><thead><tr><th>Id</th><th>Fields</th><th>Updated</th></tr></thead><tbody>
        {{#rows}}<tr><td><a href="/apps/{{name}}/records/{{type}}/{{id}}">{{id}}</a></td><td><code>{{summary}}</code></td><td>{{updated}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="3">None.</td></tr>{{/rows}}
        </tbody></table></div>
        {{/hasType}}
        {{/body}}{{/layout}}
        """

    static let record = """
        {{<layout}}{{$title}}{{name}} {{type}} {{id}}{{/title}}{{$body}}
        <h1><a href="/apps/{{name}}/records?type={{type}}">{{name}} / {{type}}</a> / {{id}}</h1>
        {{#error}}<p class="error" id="record-error">{{error}}</p>{{/error}}
        <pre class="record" id="record-view">{{json}}</pre>
        <form method="post" action="/apps/{{name}}/records/{{type}}/{{id}}" class="card" id="record-form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>Fields (JSON; fields starting with _ are the store's) <textarea name="fields" id="record-fields" rows="8">{{fields}}</textarea></label>
        <button id="record-save">Save</button>
        </form>
        <form method="post" action="/apps/{{name}}/records/{{type}}/{{id}}/delete" class="inline">
        <input type="hidden" name="csrf" value="{{csrf}}"><button class="danger" id="record-delete">Delete</button>
        </form>
        {{/body}}{{/layout}}
        """

    static let activity = """
        {{<layout}}{{$title}}Activity{{/title}}{{$body}}
        <h1>Activity</h1>
        <div class="scroll"><table id="activity"><thead><tr><th>When</th><th>App</th><th>Who</th><th>From</th><th>What</th></tr></thead><tbody>
        {{#activity}}<tr><td>{{at}}</td><td>{{#app}}<a href="/apps/{{app}}">{{app}}</a>{{/app}}</td><td>{{actor}}</td><td>{{source}}</td><td><b>{{action}}</b> {{detail}}</td></tr>{{/activity}}
        {{^activity}}<tr><td colspan="5">Nothing yet.</td></tr>{{/activity}}
        </tbody></table></div>
        {{/body}}{{/layout}}
        """

    static let message = """
        {{<layout}}{{$title}}{{heading}}{{/title}}{{$body}}
        <h1>{{heading}}</h1>
        <p class="{{kind}}" id="message">{{text}}</p>
        <p><a href="{{back}}">Back</a></p>
        {{/body}}{{/layout}}
        """
}
