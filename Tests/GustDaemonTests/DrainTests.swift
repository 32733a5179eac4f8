import Foundation
import GustCore
@testable import GustDaemon
import Testing

/// Where a drain may connect, and what a syslog receiver gets.
struct DrainAddressPolicyTests {
    @Test(arguments: [
        "127.0.0.1", "127.1.2.3", "0.0.0.0", "169.254.169.254", "::1", "::", "fe80::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
        "224.0.0.1", "ff02::1", "192.0.2.10", "fd00:ec2::254", "FD00:EC2:0::254", "100.100.100.200", "::ffff:100.100.100.200", "168.63.129.16",
    ])
    func loopbackLinkLocalAndOwnAddressesAreRefused(_ ip: String) {
        #expect(DrainAddressPolicy.refusal(ip: ip, own: ["192.0.2.10"]) != nil, "\(ip)")
    }

    @Test(arguments: ["93.184.216.34", "10.0.0.5", "2606:4700::1111", "192.0.2.11"])
    func otherAddressesAreAllowed(_ ip: String) {
        #expect(DrainAddressPolicy.refusal(ip: ip, own: ["192.0.2.10"]) == nil, "\(ip)")
    }

    @Test func thisMachinesInterfacesAreKnown() {
        let own = DrainAddressPolicy.interfaceAddresses()
        #expect(own.contains("127.0.0.1"))
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
