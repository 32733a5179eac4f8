import ArgumentParser
import Foundation
import GustCore
import GustDaemon
import NIOCore
import NIOPosix

// Swift Concurrency runs its tasks on SwiftNIO's event loops, and a task stays
// on the loop it started on: a request is read, routed, sent to its instance
// over a connection on the same loop (Instance.Connections.take(on:)) and
// answered without waking another thread. That is most of what gustd adds to
// a call (docs/benchmarks.md). It must happen before any task exists, so gustd
// starts from plain top-level code rather than an async `main`.
NIOSingletons.groupLoopCountSuggestion = EventLoopCount.chosen(in: CommandLine.arguments.dropFirst(), cores: System.coreCount)
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

GustHome.restrictNewFiles()
Task {
    await Gustd.main()
    exit(0)
}
dispatchMain()
