import ArgumentParser
import Foundation
import GustCore

/// `gust domains add|remove|list|renew`: an app's own domains. gustd routes a
/// request whose Host is one of them to the app, as it does `APP.DOMAIN`, and
/// (serving HTTPS with ACME) gets and renews a certificate for each.
struct DomainsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domains",
        abstract: "An app's own domains, served over HTTP and HTTPS with a certificate gustd gets by ACME.",
        discussion: """
            Point the domain's DNS (an A/AAAA or CNAME record) at this server first: the certificate authority \
            checks it by fetching http://DOMAIN/.well-known/acme-challenge/… from gustd's HTTP port (80). \
            `gust domains list` shows each certificate's state; a failed issuance is retried with backoff, and \
            the app keeps answering over HTTP meanwhile.
            """,
        subcommands: [Add.self, Remove.self, List.self, Renew.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give an app a domain of its own.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The domain, like www.example.com.") var domain: String

        func run() throws {
            let name = try parseAppName(app)
            let host = try parseDomain(domain)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            try store.addDomain(host, to: name)
            let told = (try? AdminClient(home: store.home).refreshDomains()) != nil
            print("Added \(host) to \(name).")
            if !told { FileHandle.standardError.write(Data("gustd is not running: it serves \(host) once it starts.\n".utf8)) }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a domain from an app; gustd stops serving it (and its certificate) at once.")
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The domain.") var domain: String

        func run() throws {
            let name = try parseAppName(app)
            let host = try parseDomain(domain)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            try store.removeDomain(host, from: name)
            try? AdminClient(home: store.home).refreshDomains()
            print("Removed \(host) from \(name).")
        }
    }

    struct Renew: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask gustd for a new certificate for a domain now, before its renewal is due (one an hour per domain, never during the backoff after a failure).",
            discussion: "The current certificate is served until the new one is in place; `gust domains list` shows the outcome."
        )
        @OptionGroup var home: HomeOptions
        @Argument(help: "The app.") var app: String
        @Argument(help: "The domain.") var domain: String

        func run() throws {
            let name = try parseAppName(app)
            let host = try parseDomain(domain)
            let store = try home.openStore()
            _ = try store.requireApp(name)
            if try store.daemonIssuesCertificates() == false {
                throw GustError(
                    "gustd gets no certificates by ACME (it runs without --https, or with --no-acme): nothing would renew \(host).",
                    code: 409, hint: "Start gustd with --https HOST:PORT (and without --no-acme), then renew.")
            }
            try store.requestRenewal(host, of: name)
            do { try AdminClient(home: store.home).refreshDomains() } catch {
                throw GustError("gustd is not running: it renews \(host) once it starts.", code: 503)
            }
            print("Asked gustd for a new certificate for \(host).")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the domains of an app (of every app, without one) and their certificates.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: ArgumentHelp("The app (default: every app).", valueName: "app")) var appArgument: String?

        /// Set by `ssh-command` for a key scoped to some apps: only theirs are listed.
        var only: Set<AppName>? = nil

        func run() throws {
            let store = try home.openStore()
            var domains: [AppDomain]
            if let appArgument {
                let name = try parseAppName(appArgument)
                _ = try store.requireApp(name)
                domains = try store.domains(of: name)
            } else {
                domains = try store.domains()
            }
            if let only { domains = domains.filter { only.contains($0.app) } }
            if output.json { return print(try Formatting.json(domains)) }
            guard !domains.isEmpty else { return print("No domains. Add one with `gust domains add APP DOMAIN`.") }
            print(Formatting.table(["DOMAIN", "APP", "CERTIFICATE", "EXPIRES", "ERROR"], domains.map { domain in
                [domain.name.rawValue, domain.app.rawValue, domain.status + (domain.renewRequested ? " (renewing)" : ""),
                 domain.expiresAt.map { ISO8601DateFormatter().string(from: $0) } ?? "-",
                 domain.error.map { String($0.split(separator: "\n").first ?? "").prefix(120) }.map(String.init) ?? "-"]
            }))
        }
    }
}

extension DomainsCommand.List: AppScopedCommand {
    /// Only consulted with an app named: without one, `SSHAccess` lets the list through and `only` filters it.
    var app: String { appArgument ?? "" }
}

func parseDomain(_ raw: String) throws -> DomainName {
    do { return try DomainName(raw) } catch { throw ValidationError(error.message) }
}
