// The Swift face of the WATT core: async/await over the generated bindings,
// an AsyncStream over the wallet's durable event queue, and the iOS key
// store and device facts.
import Foundation
import Security
@_exported import WattFFI
#if canImport(UIKit)
import UIKit
#endif

public let unitsPerWatt: UInt64 = 10_000_000

/// A wallet on this device: the verifying light client, the sealed keys and the daily tap.
public final class WattWallet: @unchecked Sendable {
    private let wallet: Wallet

    /// Everything the core reports, from its durable queue, oldest first. An
    /// event is marked handled when the consumer asks for the next one, so an
    /// app killed while handling an event sees it again on its next launch.
    /// Consume it from one place (one task) at a time.
    public var events: AsyncStream<WalletEvent> {
        let wallet = self.wallet
        var handled: UInt64? = nil
        return AsyncStream(unfolding: {
            if let id = handled { _ = try? wallet.eventHandled(id: id); handled = nil }
            while !Task.isCancelled {
                if let q = try? await wallet.waitEvent(timeoutMs: 30_000) {
                    handled = q.id
                    return q.event
                }
            }
            return nil
        })
    }

    public static func open(dataDir: URL, genesisJSON: String, keyStore: SecretKeyStore = KeychainKeyStore(),
                            platform: PlatformFacts? = nil) async throws -> WattWallet {
        let w = try await openWallet(dataDir: dataDir.path, genesisJson: genesisJSON, config: defaultWalletConfig(),
                                     keyStore: keyStore, platform: platform)
        return WattWallet(w)
    }

    private init(_ wallet: Wallet) {
        self.wallet = wallet
    }

    public func create() throws -> String { try wallet.createWallet() }
    public func restore(words: String, replace: Bool = false) throws -> String { try wallet.restoreWallet(words: words, replace: replace) }
    public var address: String? { (try? wallet.address()) ?? nil }
    public func refresh() async throws -> RefreshSummary { try await wallet.refresh() }
    public func balance() async throws -> ProvenBalance { try await wallet.balance() }
    public func status() async throws -> WalletStatus { try await wallet.status() }
    public func history(limit: UInt32 = 50) throws -> [HistoryItem] { try wallet.history(limit: limit) }
    /// Today's tap; a new account's first tap carries the invite its inviter made (`watt-invite:...`).
    public func tap(invite: String? = nil) async throws -> String { try await wallet.attest(invite: invite) }
    /// An invite for `invitee`'s first tap, valid `validDays` days from today: text for a QR code or link.
    public func invite(for invitee: String, validDays: UInt32 = 3) async throws -> String {
        try await wallet.createInvite(invitee: invitee, validDays: validDays)
    }
    public func pay(to: String, units: UInt64, feeUnits: UInt64 = 1_000) async throws -> String {
        try await wallet.pay(to: to, amountUnits: units, feeUnits: feeUnits)
    }
    public func awaitSettled(_ hash: String, timeoutMs: UInt64 = 30_000) async throws -> TxState {
        try await wallet.waitSettled(txHashHex: hash, timeoutMs: timeoutMs)
    }
    public func donate(bytes: UInt64, sectorBytes: UInt64 = 64 << 20, layers: UInt32 = 12) throws -> StorageState {
        try wallet.donate(bytes: bytes, sectorBytes: sectorBytes, layers: layers)
    }
    public func storageStatus() throws -> StorageState { try wallet.storageStatus() }
    /// The most urgent storage work the device allows, for at most `budgetMs`.
    public func runBackground(budgetMs: UInt64) async throws -> BackgroundReport { try await wallet.runBackground(budgetMs: budgetMs) }
    public func powerDecision(nextSectorBytes: UInt64, deadlineInMs: UInt64?) throws -> PowerDecision {
        try wallet.powerDecision(nextSectorBytes: nextSectorBytes, deadlineInMs: deadlineInMs)
    }
}

/// The wrapping key in the Keychain (this device only, after first unlock),
/// created on first use.
public final class KeychainKeyStore: SecretKeyStore, @unchecked Sendable {
    private let account: String
    public init(account: String = "watt-wallet-wrapping") { self.account = account }

    public func wrappingKey() throws -> Data {
        let query: [String: Any] = [kSecClass as String: kSecClassGenericPassword, kSecAttrAccount as String: account,
                                    kSecReturnData as String: true]
        var item: CFTypeRef?
        if SecItemCopyMatching(query as CFDictionary, &item) == errSecSuccess, let data = item as? Data { return data }
        var key = Data(count: 32)
        let rc = key.withUnsafeMutableBytes { SecRandomCopyBytes(kSecRandomDefault, 32, $0.baseAddress!) }
        guard rc == errSecSuccess else { throw PlatformError.Failed(reason: "no secure random bytes") }
        let add: [String: Any] = [kSecClass as String: kSecClassGenericPassword, kSecAttrAccount as String: account,
                                  kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
                                  kSecValueData as String: key]
        let status = SecItemAdd(add as CFDictionary, nil)
        guard status == errSecSuccess else { throw PlatformError.Failed(reason: "Keychain: \(status)") }
        return key
    }
}

#if canImport(UIKit)
/// UIDevice, ProcessInfo and the file system's view of the device.
public final class IOSPlatformFacts: PlatformFacts, @unchecked Sendable {
    public init() { DispatchQueue.main.async { UIDevice.current.isBatteryMonitoringEnabled = true } }

    public func current() throws -> DeviceFacts {
        let device = UIDevice.current
        let level = device.batteryLevel < 0 ? 0 : UInt8(device.batteryLevel * 100)
        let charging = device.batteryState == .charging || device.batteryState == .full
        let thermal: Thermal
        switch ProcessInfo.processInfo.thermalState {
        case .nominal: thermal = .nominal
        case .fair: thermal = .fair
        case .serious: thermal = .serious
        default: thermal = .critical
        }
        let home = URL(fileURLWithPath: NSHomeDirectory())
        let values = try? home.resourceValues(forKeys: [.volumeAvailableCapacityForImportantUsageKey, .volumeTotalCapacityKey])
        return DeviceFacts(batteryPercent: level, charging: charging, thermal: thermal,
                           lowPowerMode: ProcessInfo.processInfo.isLowPowerModeEnabled, network: .unmetered,
                           freeBytes: UInt64(values?.volumeAvailableCapacityForImportantUsage ?? 0),
                           totalBytes: UInt64(values?.volumeTotalCapacity ?? 0), screenOn: true)
    }
}
#endif
