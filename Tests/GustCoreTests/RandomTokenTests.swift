@testable import GustCore
import Testing

/// Tokens drawn in one call: as long and from the same alphabet as before, and never the same twice.
@Suite struct RandomTokenTests {
    @Test func hexIsTwoLowercaseDigitsPerByte() {
        #expect(RandomToken.hex([0x00, 0x0F, 0x10, 0xA5, 0xFF]) == "000f10a5ff")
        #expect(RandomToken.hex([]) == "")
    }

    @Test func aHexTokenHasTwoDigitsPerByteFromZeroToF() {
        let token = RandomToken.hex(bytes: 32)
        #expect(token.utf8.count == 64)
        #expect(token.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(RandomToken.hex(bytes: 32) != token)
    }

    @Test func itsBytesAreNotAllOneValue() {
        // 64 bytes: every one equal by chance is 256^-63; a buffer left unfilled would be.
        let bytes = RandomToken.bytes(64)
        #expect(bytes.count == 64)
        #expect(Set(bytes).count > 1)
        #expect(RandomToken.bytes(64) != bytes)
        #expect(RandomToken.bytes(0) == [])
    }

    @Test func storeSecretsKeepTheirShape() {
        let secret = Store.randomURLSafe(bytes: 32)
        #expect(secret.count == 43, "32 bytes as unpadded base64url")
        #expect(secret.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        #expect(Store.randomURLSafe(bytes: 32) != secret)
    }
}
