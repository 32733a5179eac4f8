/// The templates of the pages that steer an app and of its charts, apart from
/// the reading pages' (`ConsoleTemplates.swift`). Every value is written with `{{ }}` (escaped).
extension ConsoleTemplates {
    /// The answer to creating an app token: its secret, shown on this page only.
    static let token = """
        {{<layout}}{{$title}}{{name}} token {{id}}{{/title}}{{$body}}
        <h1><a href="/apps/{{name}}">{{name}}</a>: token {{id}}</h1>
        <p class="notice">Copy the token now: only its hash is kept, so it is shown only this once. It expires: {{expires}}.</p>
        <pre class="answer" id="token-secret">{{secret}}</pre>
        <p>Callers send it as <code>X-Auth-Token: …</code> with their calls and record requests.</p>
        <p><a href="/apps/{{name}}#tokens" id="token-back">Back to {{name}}</a></p>
        {{/body}}{{/layout}}
        """

    /// The app page's charts (a partial): line charts, then bar charts; each an SVG with a title and description.
    static let charts = """
        <section class="charts" id="charts" aria-label="Charts">
        {{#lineCharts}}{{> lineChart}}{{/lineCharts}}
        {{#barCharts}}
        <figure class="card chart" id="chart-{{id}}">
        <figcaption>{{title}} <span class="hint">top: {{top}}</span></figcaption>
        <svg viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-labelledby="chart-{{id}}-title chart-{{id}}-desc">
        <title id="chart-{{id}}-title">{{title}}</title><desc id="chart-{{id}}-desc">{{description}}</desc>
        {{#bars}}<rect class="bar" x="{{x}}" y="{{y}}" width="{{width}}" height="{{height}}"><title>{{label}}</title></rect>{{/bars}}
        </svg>
        <p class="hint">{{description}}</p>
        </figure>
        {{/barCharts}}
        </section>
        <section id="function-charts" aria-labelledby="functions-title">
        <h2 id="functions-title">Functions</h2>
        <p class="hint">Each op, handler, schedule and hook called in the last half hour, busiest first: calls and errors per minute, and latency.</p>
        {{#functions}}
        <article class="card function" id="function-{{index}}" data-kind="{{kind}}" data-function="{{name}}">
        <h3><span class="hint">{{kind}}</span> <code class="function-name">{{name}}</code></h3>
        <p class="hint">{{summary}}</p>
        <div class="charts">{{#lineCharts}}{{> lineChart}}{{/lineCharts}}</div>
        </article>
        {{/functions}}
        {{^functions}}<p id="functions-none">No calls in the last half hour.</p>{{/functions}}
        </section>
        """

    /// One line chart (a partial): an SVG with a title and description, its legend, and the description as text.
    static let lineChart = """
        <figure class="card chart" id="chart-{{id}}">
        <figcaption>{{title}} <span class="hint">top: {{top}}</span></figcaption>
        <svg viewBox="0 0 300 80" preserveAspectRatio="none" role="img" aria-labelledby="chart-{{id}}-title chart-{{id}}-desc">
        <title id="chart-{{id}}-title">{{title}}</title><desc id="chart-{{id}}-desc">{{description}}</desc>
        <line class="axis" x1="0" y1="79.5" x2="300" y2="79.5" vector-effect="non-scaling-stroke"/>
        {{#series}}<path class="series {{style}}" d="{{path}}" fill="none" vector-effect="non-scaling-stroke"/>{{/series}}
        </svg>
        <p class="legend">{{#series}}<span class="key {{style}}">{{name}}</span> {{/series}}</p>
        <p class="hint">{{description}}</p>
        </figure>
        """

    /// Every domain the token may see, its certificate, and forms to add and remove one.
    static let domains = """
        {{<layout}}{{$title}}Domains{{/title}}{{$body}}
        <h1>Domains</h1>
        <p class="hint">gustd routes a request whose Host is one of these to its app, and (with <code>--https</code> and ACME) gets and renews a certificate for each. Point the domain's DNS at this server first.</p>
        <div class="scroll"><table id="domains"><thead><tr><th>Domain</th><th>App</th><th>Certificate</th><th>Expires</th><th>Last failure</th><th></th></tr></thead><tbody>
        {{#domains}}<tr data-domain="{{name}}"><td><code>{{name}}</code></td><td><a href="/apps/{{app}}">{{app}}</a></td><td><span class="state {{status}}">{{status}}</span></td><td>{{expires}}</td><td>{{error}}</td>
        <td><form method="post" action="/domains/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="app" value="{{app}}"><input type="hidden" name="domain" value="{{name}}"><button class="danger" id="remove-{{name}}">Remove</button></form></td></tr>{{/domains}}
        {{^domains}}<tr><td colspan="6">No domains.</td></tr>{{/domains}}
        </tbody></table></div>
        {{#hasApps}}
        <form method="post" action="/domains" class="card" id="domain-form">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>App <select name="app" id="domain-app">{{#apps}}<option value="{{.}}">{{.}}</option>{{/apps}}</select></label>
        <label>Domain <input name="domain" id="domain-name" placeholder="www.example.com" required></label>
        <button id="domain-add">Add domain</button>
        </form>
        {{/hasApps}}
        {{/body}}{{/layout}}
        """
}
