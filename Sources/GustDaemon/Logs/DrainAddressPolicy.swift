#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GustCore
import NIOCore

/// Which addresses a drain may connect to. A drain URL comes from a scoped key, and gustd's
/// outbound connections start from inside the host's network: without this an app could make
/// gustd post its log lines to a service on loopback (gustd's own admin-free listeners, a
/// database), to the cloud metadata address (169.254.169.254) or to the server's other ports.
///
/// Checked on the address actually connected to, after resolving, on every connection: a name
/// that resolves to a public address at `drains add` and to 127.0.0.1 later (DNS rebinding) is
/// refused then. An admin may allow such addresses for one drain (`--allow-private`).
struct DrainAddressPolicy: Sendable {
    /// This machine's own addresses, besides loopback, as they are now: read at each check, since
    /// a server gains addresses while gustd runs (a floating IP, a DHCP lease, a rotated IPv6
    /// address), and one read at the start let a drain reach services on the newer ones.
    let ownAddresses: @Sendable () -> Set<String>

    static func current() -> DrainAddressPolicy {
        DrainAddressPolicy(ownAddresses: { Set(interfaceAddresses()) })
    }

    /// Why the address is refused, or nil if a drain may reach it.
    func refusal(of address: SocketAddress) -> String? {
        guard let ip = address.ipAddress else { return "it is not an IP address" }
        return Self.refusal(ip: ip, own: ownAddresses())
    }

    /// Loopback, unspecified (0.0.0.0 reaches loopback), link-local (the metadata service), the
    /// other metadata services, private networks (RFC 1918, shared address space, benchmarking,
    /// unique local IPv6: the LAN behind the server, never a tenant's to reach) and the machine's
    /// own addresses, including their IPv4-mapped and NAT64 (64:ff9b::/96) IPv6 spellings.
    static func refusal(ip: String, own: Set<String>) -> String? {
        var text = ip.lowercased()
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        if text.hasPrefix("::ffff:"), text.dropFirst(7).contains(".") { text = String(text.dropFirst(7)) }
        if let v6 = IPv6(text), let embedded = v6.nat64 { text = embedded }
        if Self.isMetadataService(text) { return "\(ip) is a cloud's metadata service" }
        if let v4 = IPv4(text) {
            if v4.octets[0] == 127 { return "\(ip) is a loopback address" }
            if v4.octets == [0, 0, 0, 0] || v4.octets[0] == 0 { return "\(ip) is an unspecified address" }
            if v4.octets[0] == 169 && v4.octets[1] == 254 { return "\(ip) is a link-local address (where cloud metadata services answer)" }
            if v4.octets[0] >= 224 { return "\(ip) is a multicast or reserved address" }
            if v4.isPrivate { return "\(ip) is a private network's address" }
        } else if let v6 = IPv6(text) {
            if v6.isLoopback { return "\(ip) is a loopback address" }
            if v6.isUnspecified { return "\(ip) is an unspecified address" }
            if v6.isLinkLocal { return "\(ip) is a link-local address" }
            if v6.isMulticast { return "\(ip) is a multicast address" }
            if v6.bytes[0] & 0xFE == 0xFC { return "\(ip) is a unique local (private) address" }
        } else {
            return "\(ip) is not an IP address"
        }
        if own.contains(text) { return "\(ip) is one of this server's own addresses" }
        return nil
    }

    /// Cloud metadata services outside the link-local ranges (which are refused whole), where a
    /// request from the host can read its credentials: AWS's IPv6 one, Alibaba Cloud's, Azure's
    /// WireServer. `scripts/gust-firewall.sh` keeps the apps from them too.
    static let metadataServices = ["fd00:ec2::254", "100.100.100.200", "168.63.129.16"]

    /// Compared as addresses, not text: `FD00:EC2:0::254` is the same one.
    private static func isMetadataService(_ text: String) -> Bool {
        if let v4 = IPv4(text) { return metadataServices.contains { IPv4($0)?.octets == v4.octets } }
        if let v6 = IPv6(text) { return metadataServices.contains { IPv6($0)?.bytes == v6.bytes } }
        return false
    }

    static func interfaceAddresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [String] = []
        for node in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let raw = node.pointee.ifa_addr else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let family = Int32(raw.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            let length = socklen_t(family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if getnameinfo(raw, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                var text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
                if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
                addresses.append(text)
            }
        }
        return addresses
    }

    private struct IPv4 {
        let octets: [UInt8]
        init?(_ text: String) {
            var address = [UInt8](repeating: 0, count: 4)  // an in_addr: network order, as written
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            octets = address
        }
        /// 10/8, 172.16/12, 192.168/16 (RFC 1918), 100.64/10 (shared, carrier NAT), 198.18/15 (benchmarking).
        var isPrivate: Bool {
            let (a, b) = (octets[0], octets[1])
            return a == 10 || (a == 172 && b & 0xF0 == 16) || (a == 192 && b == 168) || (a == 100 && b & 0xC0 == 64)
                || (a == 198 && b & 0xFE == 18)
        }
    }

    private struct IPv6 {
        let bytes: [UInt8]
        init?(_ text: String) {
            var address = [UInt8](repeating: 0, count: 16)  // an in6_addr
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            bytes = address
        }
        var isLoopback: Bool { bytes.dropLast().allSatisfy { $0 == 0 } && bytes.last == 1 }
        var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
        var isLinkLocal: Bool { bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 }
        var isMulticast: Bool { bytes[0] == 0xFF }
        /// The IPv4 address a NAT64 prefix (64:ff9b::/96) reaches, written as IPv4.
        var nat64: String? {
            guard bytes[0..<12].elementsEqual([0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0]) else { return nil }
            return bytes[12...].map(String.init).joined(separator: ".")
        }
    }
}
