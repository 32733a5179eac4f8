import Foundation
import GustCore
import NIOCore
import Synchronization
@testable import GustDaemon
import Testing

/// Where a drain may connect, and what a syslog receiver gets.
struct DrainAddressPolicyTests {
    @Test(arguments: [
        "127.0.0.1", "127.1.2.3", "0.0.0.0", "169.254.169.254", "::1", "::", "fe80::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
        "224.0.0.1", "ff02::1", "192.0.2.10", "fd00:ec2::254", "FD00:EC2:0::254", "100.100.100.200", "::ffff:100.100.100.200", "168.63.129.16",
        // Private networks behind the server (a tenant's drain must not reach the LAN's services),
        // also as NAT64 and IPv4-mapped spellings.
        "10.0.0.5", "172.16.0.1", "172.31.255.254", "192.168.1.1", "100.64.0.1", "198.18.0.1", "fd12:3456::1", "fc00::1",
        "::ffff:10.0.0.5", "64:ff9b::a00:5", "64:ff9b::7f00:1",
    ])
    func loopbackLinkLocalPrivateAndOwnAddressesAreRefused(_ ip: String) {
        #expect(DrainAddressPolicy.refusal(ip: ip, own: ["192.0.2.10"]) != nil, "\(ip)")
    }

    @Test(arguments: ["93.184.216.34", "2606:4700::1111", "192.0.2.11", "172.32.0.1", "172.15.255.255", "100.128.0.1", "64:ff9b::5db8:d822"])
    func otherAddressesAreAllowed(_ ip: String) {
        #expect(DrainAddressPolicy.refusal(ip: ip, own: ["192.0.2.10"]) == nil, "\(ip)")
    }

    @Test func thisMachinesInterfacesAreKnown() {
        let own = DrainAddressPolicy.interfaceAddresses()
        #expect(own.contains("127.0.0.1"))
    }

    /// An address the server gains after gustd started (a floating IP, a rotated IPv6 address) is
    /// its own as soon as it has it: the interfaces are read at each connection, not once.
    @Test func anAddressGainedAfterTheStartIsTheServersOwn() throws {
        let addresses = Mutex<Set<String>>(["192.0.2.10"])
        let policy = DrainAddressPolicy(ownAddresses: { addresses.withLock { $0 } })
        let gained = try SocketAddress(ipAddress: "203.0.113.7", port: 443)
        #expect(policy.refusal(of: gained) == nil)
        addresses.withLock { _ = $0.insert("203.0.113.7") }
        #expect(policy.refusal(of: gained) != nil)
    }
}

struct SyslogMessageTests {
    @Test func anEntryIsAnOctetCountedRFC5424Message() throws {
        let entry = LogEntry(
            time: Date(timeIntervalSince1970: 1_700_000_000), release: 3, instance: "a1b2", stream: "stderr", function: "op x]\"y",
            line: "boom")
        let frame = String(decoding: SyslogMessage.frame(entry, app: try AppName("cats"), hostname: "my host"), as: UTF8.self)
        let space = try #require(frame.firstIndex(of: " "))
        let message = frame[frame.index(after: space)...]
        #expect(Int(frame[..<space]) == message.utf8.count, "the length prefix counts the message's bytes")
        #expect(message == #"<11>1 2023-11-14T22:13:20.000Z myhost cats a1b2 - [gust@32473 release="3" function="op x\]\"y" stream="stderr"] boom"#)
    }

    @Test func stdoutIsInformational() throws {
        let entry = LogEntry(release: nil, instance: nil, stream: "stdout", function: nil, line: "hi")
        let frame = String(decoding: SyslogMessage.frame(entry, app: try AppName("cats"), hostname: "h"), as: UTF8.self)
        #expect(frame.contains(" <14>1 "))
        #expect(frame.contains(" h cats stdout - [gust@32473 stream=\"stdout\"] hi"))
    }
}
