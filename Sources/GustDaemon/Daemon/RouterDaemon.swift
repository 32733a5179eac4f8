#if canImport(Glibc)
import Glibc
#endif
import CGustSystem
import Foundation
import GustBuild
import GustCore
import Hummingbird
import HummingbirdTLS
public import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// gustd: the public HTTP server, the admin API and the supervisor, each a
/// `Service` in one `ServiceGroup`, which stops them gracefully on SIGTERM or SIGINT.
public enum RouterDaemon {
    public static func run(_ requested: RouterConfiguration, logger: Logger) async throws {
        // Listening sockets from systemd or the gustd handing over to this one, before anything else.
        signal(SIGUSR2, SIG_IGN)  // until `GustdHandover` listens for it
        let inherited = InheritedSockets.fromEnvironment()
        let handedOver = GustdHandover.sayReady(inherited)
        let executable = GustdHandover.ownExecutable()
        let home = requested.home
        try home.prepare()
        if handedOver { logger.notice("gustd has the listening sockets of the gustd before it; it starts once that one has drained") }
        // The sandboxes' /etc, copied while the gustd before drains (into a directory of this process's
        // own); swapped in under the lock by `withHostEtc` below.
        if requested.sandbox != nil {
            try? await Supervisor.offTheLoops { try SandboxEtc.stage(in: home.run) }
        }
        let pidLock = try await DaemonLock.acquire(home: home, waiting: handedOver)
        defer { pidLock.release() }
        // First: the gustd before this one removed its pid file as it left.
        try? AtomicFile.write(Data("\(getpid())\n".utf8), to: home.run.appendingPathComponent("gustd.pid"))
        // The sandbox's seccomp filter and /etc, made afresh by each gustd (alone now: the one before has
        // drained, and its sandboxes, which bound the /etc this replaces, have stopped): the copy staged
        // above is renamed into place (SandboxEtc).
        var prepared = requested
        prepared.sandbox = try requested.sandbox?.withSeccompFilter(in: home.run).withHostEtc(in: home.run)
        let configuration = prepared
        let listeners = Listeners(
            inherited: inherited, fromSystemd: inherited.count > 0 && !handedOver, trustedProxies: configuration.trustedProxies,
            logger: logger)
        if let limit = DescriptorLimit.raiseToHardLimit() {
            logger.notice("gustd's file descriptor limit: \(limit) (its soft limit raised to the hard limit)")
        }

        var mechanism: LimitMechanism?
        if configuration.enforcesLimits {
            let detected = LimitMechanism.detect(root: configuration.cgroupMount, name: configuration.cgroupRoot)
            logger.notice("\(detected.description); defaults per instance: \(configuration.limitDefaults.summary)")
            // Each start moves its instance into cgroups: say if the kernel makes every such move wait.
            let movesIntoCgroups = if case .rlimits = detected { false } else { true }
            if movesIntoCgroups, let advice = CgroupMoves.current().advice { logger.notice("\(advice)") }
            mechanism = detected
        } else {
            logger.warning("Limits: not enforced (--no-limits)")
        }
        // gustd's own share of the CPU, beside its instances' tree; where it cannot be set, gustd says so and goes on.
        if let weight = configuration.cpuWeight.flatMap(GustdCgroup.init(weight:)) {
            let membership = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
            let placed = weight.place(pid: getpid(), mechanism: mechanism, cgroupRoot: configuration.cgroupRoot, membership: membership)
            logger.notice("\(placed.line)")
        }
        // What gust-receive read before builds were gustd's: gone, so that no older hook confines by a stale one.
        try? FileManager.default.removeItem(at: home.run.appendingPathComponent("limits.json"))
        // A restored home's releases name stacks a backup leaves out: say which, and how to build them.
        let missing = (try? await StoreAccess(home: home).run { try $0.missingStacks() }) ?? []
        for stack in missing {
            logger.warning("Stack \(stack.reference) is not in this home; releases on it cannot start until it is built (as root): \(stack.line)")
        }
        let supervisor = try Supervisor(configuration: configuration, logger: logger, limitMechanism: mechanism)
        let scheduler = try Scheduler(configuration: configuration, supervisor: supervisor, logger: logger)
        await supervisor.attach(scheduler)
        await scheduler.start()
        await supervisor.start()

        // The apps' own domains and, with --https, their certificates: routes are read before anything is served.
        let tls = try HTTPSSetup(configuration, logger: logger)
        let domains = try CertificateManager(home: home, certificates: tls.certificates, acme: tls.acme, logger: logger)
        try await StoreAccess(home: home).run { [issues = tls.acme != nil] in
            try $0.setDaemonDomain(configuration.domain)
            try $0.setDaemonIssuesCertificates(issues)
            try $0.setDaemonReservedDomains(configuration.reservedDomains)
        }
        await domains.refresh()
        let redirect = configuration.redirectHTTPS ? configuration.https.map { HTTPSRedirect(port: $0.port) } : nil

        // The admin API and the records channel: Unix sockets, under the same descriptor budget as the
        // TCP listeners (`Listeners.serveUnix`).
        let socket = home.adminSocket.path
        let admin = try listeners.serveUnix(
            "admin socket", path: socket, mode: 0o600, responder: AdminAPI(supervisor: supervisor, domains: domains), logger: logger,
            onServerRunning: { _ in markCloseOnExec() }
        )
        let records = RecordsAPI(hub: RecordsHub(home: home, supervisor: supervisor))
        // Sandboxed instances reach it through a hard link in their socket directory, as their app's uid
        // (each held to its share of connections); run/ (0700) keeps every other user from its path.
        let channel = try listeners.serveUnix(
            "records channel", path: home.recordsSocket.path, mode: configuration.sandbox?.identity.range != nil ? 0o666 : 0o600,
            responder: RecordsChannel(tokens: supervisor.channelTokens, api: records), limitsPeers: true,
            http1: .closingIdle(configuration), logger: logger,
            onServerRunning: { _ in markCloseOnExec() }
        )
        let accessLog = try AccessLog(configuration.accessLog)
        defer { accessLog.close() }
        let addressFile = home.run.appendingPathComponent("gustd.http")
        // Idle and slow clients are closed, so they cannot hold gustd's descriptors;
        // NIO's accept backoff keeps the listener accepting once descriptors run short.
        let (idleTimeout, headerTimeout) = (TimeAmount(configuration.idleTimeout), TimeAmount(configuration.headerTimeout))
        let gateway = Gateway(
            supervisor: supervisor, configuration: configuration, records: records, accessLog: accessLog,
            domains: domains.routes, challenges: tls.acme != nil ? domains.challenges : nil, redirect: redirect
        )
        let http = try listeners.serve(
            "http", host: configuration.httpHost, port: configuration.httpPort, responder: gateway,
            http1: .init(
                additionalChannelHandlers: [RequestHeadDeadline(timeout: headerTimeout), ClientDisconnectHandler(), UpgradeGuard()],
                idleTimeout: idleTimeout
            ),
            serverName: "gust", lane: gateway, logger: logger,
            onServerRunning: { channel in
                markCloseOnExec()
                let port = channel.localAddress?.port ?? configuration.httpPort
                await supervisor.setPublicPort(port)
                // Where gustd listens, for scripts and tests that asked for port 0.
                try? AtomicFile.write(Data("\(configuration.httpHost):\(port)\n".utf8), to: addressFile)
                logger.notice("gustd serving http://\(configuration.httpHost):\(port)/ (apps at APP.\(configuration.domain)), admin API on \(socket)")
            }
        )
        var https: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let address = configuration.https, let certificates = tls.certificates {
            let httpsFile = home.run.appendingPathComponent("gustd.https")
            let gateway = Gateway(
                supervisor: supervisor, configuration: configuration, records: records, accessLog: accessLog, scheme: "https",
                domains: domains.routes
            )
            https.append(.init(service: try listeners.serve(
                "https", host: address.host, port: address.port, responder: gateway,
                http1: .init(
                    additionalChannelHandlers: [RequestHeadDeadline(timeout: headerTimeout), ClientDisconnectHandler(), UpgradeGuard()],
                    idleTimeout: idleTimeout
                ),
                tls: certificates.serverConfiguration(),
                serverName: "gust", lane: gateway, logger: logger,
                onServerRunning: { channel in
                    markCloseOnExec()
                    let port = channel.localAddress?.port ?? address.port
                    logger.notice("gustd serving https://\(address.host):\(port)/ (TLS 1.2+, a certificate per name by SNI)")
                }
            )))
            // Known now, the socket bound: the redirect's port, and the file, before gustd.http (which scripts wait for).
            let port = listeners.port(of: "https") ?? address.port
            redirect?.setPort(port)
            try? AtomicFile.write(Data("\(address.host):\(port)\n".utf8), to: httpsFile)
        }
        let metrics = try MetricsListener.services(configuration, supervisor: supervisor, listeners: listeners, logger: logger)
        let console = try ConsoleListener.services(
            configuration, supervisor: supervisor, records: records, domains: domains, listeners: listeners,
            tls: configuration.https == nil ? nil : tls.certificates?.serverConfiguration(), logger: logger)
        for name in inherited.closeUntaken() {
            logger.warning("gustd was given a \(name) socket it does not serve (its option is off); it is closed")
        }
        var services = ServiceGroupConfiguration(
            services: [
                .init(service: admin),
                .init(service: http),
                .init(service: channel),
            ] + https + [.init(service: CertificateService(manager: domains))] + metrics + console + [
                .init(service: LogService(configuration: configuration, logger: logger)),
                .init(service: SchedulerService(scheduler: scheduler)),
                // Last, so it is told to shut down first (the group goes in reverse): waiting calls get
                // 503 at once, calls in flight finish, then every instance stops.
                .init(service: SupervisorService(supervisor: supervisor, logger: logger)),
                // After it, so told first: listeners whose sockets outlive this gustd stop accepting before the supervisor drains.
                .init(service: ListenersFirst(listeners: listeners, beforeDraining: { await supervisor.letHeldCallsGo() }, logger: logger)),
                // SIGUSR2: hand the listening sockets to a new gustd, then drain and exit as on SIGTERM.
                .init(
                    service: GustdHandover(listeners: listeners, executable: executable, arguments: CommandLine.arguments, logger: logger),
                    successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // Calls in flight get their time limit, instances their stop grace; past that, cancel.
        services.maximumGracefulShutdownDuration = configuration.functionTimeout + configuration.stopGrace + .seconds(5)
        // And a service its cancellation does not end within this does not keep gustd (and the
        // home's lock, which a successor waits for) for good.
        services.maximumCancellationDuration = .seconds(10)
        do {
            try await ServiceGroup(configuration: services).run()
        } catch {
            await tls.shutdown()
            throw error
        }
        await tls.shutdown()
        try? FileManager.default.removeItem(at: addressFile)
        try? FileManager.default.removeItem(at: home.run.appendingPathComponent("gustd.pid"))
        try? FileManager.default.removeItem(at: home.run.appendingPathComponent("gustd.https"))
        try? FileManager.default.removeItem(at: MetricsListener.addressFile(home))
        try? FileManager.default.removeItem(at: ConsoleListener.addressFile(home))
    }
}

/// SwiftNIO opens its listeners, connections and epoll descriptors without
/// O_CLOEXEC; once a listener is bound, every descriptor gustd holds is marked
/// close-on-exec, so that nothing started by an exec (rather than by
/// `InstanceProcess`, which closes them all in the child anyway) could inherit them.
private func markCloseOnExec() {
    _ = gust_cloexec_from(3)
}

/// Runs the supervisor's pools for the life of the group; on shutdown it
/// drains them (calls in flight finish, waiting ones get 503) and returns once
/// every instance has stopped. A second SIGTERM or SIGINT meanwhile ends gustd
/// at once: every instance is killed.
private struct SupervisorService: Service {
    let supervisor: Supervisor
    let logger: Logger

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await supervisor.runPools() }
            try? await gracefulShutdown()
            group.addTask { [supervisor, logger] in
                for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    logger.warning("A second signal: killing every instance and stopping now; calls in flight are cut short")
                    supervisor.records.killAll()
                    exit(1)
                }
            }
            await supervisor.stopAll()
            _ = await group.next()  // the pools have stopped
            group.cancelAll()
        }
    }
}

/// One gustd per home: a second one would fight the first over instances.
private struct DaemonLock {
    let descriptor: Int32

    /// `waiting`: for the gustd that handed over to this one to drain and exit (it holds the lock till then).
    static func acquire(home: GustHome, waiting: Bool) async throws -> DaemonLock {
        let path = home.daemonLock.path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw GustError("Cannot open \(path): \(String(cString: strerror(errno)))") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard waiting else {
                close(fd)
                throw GustError("Another gustd is already running for \(home.path).", hint: "Stop it first, or use another --home.")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Checked with the lock held: a `gust restore` holds it while it fills the home.
        guard !FileManager.default.fileExists(atPath: home.restoreUnfinished.path) else {
            close(fd)
            throw GustError(
                "A gust restore into \(home.path) did not finish: the home is not whole.",
                hint: "Run the same `gust restore DIR --home \(home.path)` again; it takes up where it stopped."
            )
        }
        return DaemonLock(descriptor: fd)
    }

    func release() { close(descriptor) }
}
