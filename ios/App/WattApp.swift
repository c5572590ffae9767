// The WATT app for iOS: onboarding, the daily tap with its countdown, balance
// and history, pay, storage donation, status; background refresh and
// processing tasks; the key in the Keychain.
import BackgroundTasks
import SwiftUI
import UserNotifications
import WattFFI
import WattSDK

@MainActor
final class WalletModel: ObservableObject {
    @Published var status: WalletStatus?
    @Published var history: [HistoryItem] = []
    @Published var message: String?
    @Published var words: String?
    private(set) var wallet: WattWallet?

    func start() async {
        guard wallet == nil, let url = Bundle.main.url(forResource: "genesis", withExtension: "json"),
              let genesis = try? String(contentsOf: url) else { message = "genesis.json is missing from the app bundle"; return }
        let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0].appendingPathComponent("watt")
        do {
            let w = try await WattWallet.open(dataDir: dir, genesisJSON: genesis, platform: IOSPlatformFacts())
            wallet = w
            Task { for await _ in w.events { await reload() } }
            while true {
                _ = try? await w.refresh()
                await reload()
                try? await Task.sleep(nanoseconds: 5_000_000_000)
            }
        } catch { message = "\(error)" }
    }

    func reload() async {
        guard let w = wallet else { return }
        status = try? await w.status()
        history = (try? w.history()) ?? []
    }

    func act(_ work: @escaping (WattWallet) async throws -> String?) {
        guard let w = wallet else { return }
        Task {
            do { message = try await work(w) } catch { message = "\(error)" }
            await reload()
        }
    }
}

/// Opens the wallet and refreshes once (settles pending transactions).
func backgroundRefresh() async {
    guard let url = Bundle.main.url(forResource: "genesis", withExtension: "json"),
          let genesis = try? String(contentsOf: url) else { return }
    let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0].appendingPathComponent("watt")
    if let w = try? await WattWallet.open(dataDir: dir, genesisJSON: genesis, platform: IOSPlatformFacts()) {
        _ = try? await w.refresh()
    }
}

/// Seals for a few minutes under the core's power policy.
func backgroundSeal() async {
    guard let url = Bundle.main.url(forResource: "genesis", withExtension: "json"),
          let genesis = try? String(contentsOf: url) else { return }
    let dir = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0].appendingPathComponent("watt")
    if let w = try? await WattWallet.open(dataDir: dir, genesisJSON: genesis, platform: IOSPlatformFacts()) {
        _ = try? await w.runBackground(budgetMs: 3 * 60_000)
    }
}

@main
struct WattApp: App {
    @StateObject private var model = WalletModel()

    init() {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: "org.watt.refresh", using: nil) { task in
            // Proofs and pending transactions: short, any power state.
            Task { await backgroundRefresh(); task.setTaskCompleted(success: true) }
        }
        BGTaskScheduler.shared.register(forTaskWithIdentifier: "org.watt.seal", using: nil) { task in
            // Sealing: only on external power (the request says so; the core checks too).
            Task { await backgroundSeal(); task.setTaskCompleted(success: true) }
        }
        let seal = BGProcessingTaskRequest(identifier: "org.watt.seal")
        seal.requiresExternalPower = true
        try? BGTaskScheduler.shared.submit(seal)
        try? BGTaskScheduler.shared.submit(BGAppRefreshTaskRequest(identifier: "org.watt.refresh"))
        UNUserNotificationCenter.current().requestAuthorization(options: [.alert]) { granted, _ in
            guard granted else { return }
            let content = UNMutableNotificationContent()
            content.title = "Time for today's tap"
            let trigger = UNCalendarNotificationTrigger(dateMatching: DateComponents(hour: 9), repeats: true)
            UNUserNotificationCenter.current().add(UNNotificationRequest(identifier: "daily-tap", content: content, trigger: trigger))
        }
    }

    var body: some Scene {
        WindowGroup {
            RootView().environmentObject(model).task { await model.start() }
        }
    }
}

struct RootView: View {
    @EnvironmentObject var model: WalletModel
    var body: some View {
        if let words = model.words {
            WordsView(words: words)
        } else if model.status?.account == nil {
            OnboardingView()
        } else {
            TabView {
                TapView().tabItem { Text("Tap") }
                WalletView().tabItem { Text("Wallet") }
                StorageView().tabItem { Text("Storage") }
                StatusView().tabItem { Text("Status") }
            }
        }
    }
}

struct OnboardingView: View {
    @EnvironmentObject var model: WalletModel
    @State private var restoring = ""
    var body: some View {
        VStack(spacing: 16) {
            Text("Welcome to WATT").font(.title)
            Button("Create a wallet") { model.act { w in let words = try w.create(); await MainActor.run { model.words = words }; return nil } }
            TextField("Or restore from 24 words", text: $restoring)
            Button("Restore") { model.act { w in "Restored \(try w.restore(words: restoring))" } }
                .disabled(restoring.split(separator: " ").count != 24)
            if let m = model.message { Text(m).foregroundColor(.secondary) }
        }.padding()
    }
}

struct WordsView: View {
    @EnvironmentObject var model: WalletModel
    let words: String
    var body: some View {
        VStack {
            Text("Write these 24 words down. They are the only way back into your wallet.")
            Text(words).font(.body.monospaced())
            Button("I wrote them down") { model.words = nil }
        }.padding()
    }
}

struct TapView: View {
    @EnvironmentObject var model: WalletModel
    @State private var invite = ""
    var body: some View {
        TimelineView(.periodic(from: .now, by: 1)) { context in
            VStack(spacing: 16) {
                Text("Day \(model.status?.day.map(String.init) ?? "-")").font(.title2)
                switch model.status?.attestedToday {
                case .confirmed: Text("Tapped today.")
                case .pending: Text("Tap sent; waiting for the network…")
                default:
                    if model.status?.balanceUnits == nil { TextField("Invite (first tap)", text: $invite) }
                    Button("TAP") { model.act { w in _ = try await w.tap(invite: invite.isEmpty ? nil : invite); return "Tapped" } }
                        .font(.largeTitle).disabled(model.status?.canSign != true)
                }
                if let next = model.status?.nextDayStartsMs {
                    let left = max(0, Int(Double(next) / 1000 - context.date.timeIntervalSince1970))
                    Text(String(format: "Next day in %02d:%02d:%02d", left / 3600, left / 60 % 60, left % 60))
                }
                if let m = model.message { Text(m).foregroundColor(.secondary) }
            }.padding()
        }
    }
}

struct WalletView: View {
    @EnvironmentObject var model: WalletModel
    @State private var to = ""
    @State private var amount = ""
    var body: some View {
        VStack(alignment: .leading) {
            Text(model.status?.balanceUnits.map { formatAmount(units: $0) } ?? "—").font(.title)
            TextField("Pay to (W…)", text: $to)
            TextField("Amount (WATT)", text: $amount)
            Button("Pay") { model.act { w in _ = try await w.pay(to: to, units: try parseAmount(text: amount)); return "Payment sent" } }
            List(model.history, id: \.id) { item in Text("\(String(describing: item.kind)): \(String(describing: item.state))") }
        }.padding()
    }
}

struct StorageView: View {
    @EnvironmentObject var model: WalletModel
    @State private var gib = 0.0
    @State private var storage: StorageState?
    var body: some View {
        VStack {
            Text("Donate idle storage").font(.title2)
            Slider(value: $gib, in: 0...64, step: 1) { editing in
                guard !editing, let w = model.wallet else { return }
                storage = try? w.donate(bytes: UInt64(gib) << 30)
            }
            Text("\(Int(gib)) GiB")
            ForEach(storage?.sectors ?? [], id: \.number) { s in
                Text("Sector \(s.number): \(s.sealed ? "sealed" : "sealing \(s.labelsDone * 100 / max(s.labelsTotal, 1))%")")
            }
            Text("Sealing runs only on external power, cool and with room to spare.").font(.footnote)
        }.padding().task { storage = try? model.wallet?.storageStatus() }
    }
}

struct StatusView: View {
    @EnvironmentObject var model: WalletModel
    var body: some View {
        List {
            if let slot = model.status?.forkSlot { Text("FORK DETECTED at slot \(slot): signing is stopped.").foregroundColor(.red) }
            Text("Verified ledger \(model.status?.verifiedLedger.map(String.init) ?? "-")\(model.status?.stale == true ? " (stale)" : "")")
            Text("Pending: \(model.status?.pending.count ?? 0)")
            ForEach(model.status?.nodes ?? [], id: \.nodeId) { n in
                Text("\(n.nodeId.prefix(8))… \(n.address) \(n.demoted ? "demoted" : n.connected ? "connected" : "")")
            }
        }
    }
}
