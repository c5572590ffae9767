// The Kotlin SDK on a plain JVM against the real cdylib and a network of
// real `watt-node` validators started here. Prints "N passed, M failed".
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import org.watt.sdk.*
import java.io.File
import java.net.DatagramSocket
import java.net.ServerSocket
import java.nio.file.Files
import java.security.SecureRandom
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

val binDir = File(System.getenv("WATT_BIN_DIR") ?: "target/debug")
val work: File = Files.createTempDirectory("watt-kotlin").toFile()
val nodes = mutableListOf<Process>()

fun run(vararg args: String, stdin: String? = null): String {
    val p = ProcessBuilder(*args).redirectErrorStream(false).start()
    p.outputStream.use { if (stdin != null) it.write(stdin.toByteArray()) }
    val out = p.inputStream.bufferedReader().readText()
    val err = p.errorStream.bufferedReader().readText()
    check(p.waitFor() == 0) { "${args.joinToString(" ")} failed: $err" }
    return out
}

fun jsonField(json: String, name: String): String =
    Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(json)?.groupValues?.get(1) ?: error("no $name in $json")

fun portsFree(base: Int, n: Int): Boolean = (0 until n).all { i ->
    runCatching { DatagramSocket(base + i).close(); ServerSocket(base + 1000 + i).close(); true }.getOrDefault(false)
}

/** A key store that keeps its 32 bytes in memory, as the Keystore would on a device. */
class MemoryKeyStore : SecretKeyStore {
    private val key = ByteArray(32).also { SecureRandom().nextBytes(it) }
    override fun wrappingKey(): ByteArray = key.copyOf()
}

class CountingFacts(@Volatile var charging: Boolean) : PlatformFacts {
    val calls = AtomicInteger()
    override fun current(): DeviceFacts {
        calls.incrementAndGet()
        return DeviceFacts(80u, charging, Thermal.NOMINAL, false, Network.UNMETERED, 40uL shl 30, 128uL shl 30, false)
    }
}

val results = mutableListOf<Pair<String, Throwable?>>()

suspend fun test(name: String, body: suspend () -> Unit) {
    val failure = try { body(); null } catch (t: Throwable) { t }
    results += name to failure
    println(if (failure == null) "PASS $name" else "FAIL $name: $failure")
}

/** Waits for an event matching [pred], calling [poke] (a refresh) between looks. */
suspend fun awaitEvent(seen: List<WalletEvent>, timeoutMs: Long, poke: suspend () -> Unit, pred: (WalletEvent) -> Boolean): WalletEvent {
    val end = System.currentTimeMillis() + timeoutMs
    while (true) {
        seen.firstOrNull(pred)?.let { return it }
        check(System.currentTimeMillis() < end) { "no such event within $timeoutMs ms; saw $seen" }
        runCatching { poke() }
        delay(300)
    }
}

suspend fun untilVerified(w: WattWallet) {
    val end = System.currentTimeMillis() + 60_000
    while (true) {
        try { w.refresh(); return } catch (e: WattException) {
            if (System.currentTimeMillis() > end) throw e
            delay(300)
        }
    }
}

fun main() {
    val founderKeys = run("$binDir/watt", "--data-dir", "${work}/founder-keys", "keys", "new", "--json")
    val founder = jsonField(founderKeys, "address")
    val founderWords = jsonField(founderKeys, "mnemonic")
    var base = 32000 + (ProcessHandle.current().pid() % 300).toInt() * 20
    while (!portsFree(base, 4)) base += 20
    run("$binDir/watt-node", "init", "--new-network", "--validators", "4", "--dir", "$work/net", "--port", "$base",
        "--ledger-ms", "500", "--day-seconds", "20", "--network", "kotlin-sdk", "--founder", founder, "--attest-grace-ledgers", "2")
    Runtime.getRuntime().addShutdownHook(Thread { nodes.forEach { it.destroyForcibly() } })
    for (i in 0 until 4) {
        nodes += ProcessBuilder("$binDir/watt-node", "run", "--config", "$work/net/node-$i.toml")
            .redirectOutput(File("$work/node-$i.out")).redirectError(File("$work/node-$i.log")).start()
    }
    val genesis = File("$work/net/genesis.json").readText()
    val logLines = CopyOnWriteArrayList<String>()
    setLogSink(object : LogSink {
        override fun log(level: LogLevel, target: String, message: String) { logLines += "$level $target $message" }
    }, LogLevel.DEBUG)

    runBlocking {
        val founderFacts = CountingFacts(charging = true)
        val founderWallet = WattWallet.open("$work/founder", genesis, MemoryKeyStore(), founderFacts)
        val phoneKeys = MemoryKeyStore()
        var phone = WattWallet.open("$work/phone", genesis, phoneKeys, CountingFacts(charging = false))
        var phoneAddress = ""
        var reward = 0L
        val founderEvents = CopyOnWriteArrayList<WalletEvent>()
        val phoneEvents = CopyOnWriteArrayList<WalletEvent>()
        // Each collector drains its wallet's durable queue; each event is
        // marked handled once the lambda returned.
        val founderCollector = launch { founderWallet.events.collect { founderEvents += it } }
        var phoneCollector = launch { phone.events.collect { phoneEvents += it } }
        delay(50) // let the collectors subscribe

        test("a bad address is a typed exception") {
            val e = runCatching { checkAddress("WNOTANADDRESS") }.exceptionOrNull()
            check(e is WattException.InvalidAddress) { "got $e" }
            val p = runCatching { founderWallet.pay("not-an-address", 1) }.exceptionOrNull()
            check(p is WattException.InvalidAddress) { "got $p" }
            val none = runCatching { phone.tap() }.exceptionOrNull()
            check(none is WattException.NoWallet) { "a tap before the wallet exists: $none" }
        }

        test("create and restore wallets") {
            check(founderWallet.restore(founderWords) == founder)
            val words = phone.create()
            check(words.split(" ").size == 24)
            phoneAddress = phone.address ?: error("no address after create")
            check(checkAddress(phoneAddress) == KeyKind.ACCOUNT)
            check(phone.exportWords() == words)
        }

        test("the daily tap is confirmed and the event arrives through the durable queue") {
            untilVerified(founderWallet)
            val founderTap = founderWallet.tap()
            check(founderWallet.awaitSettled(founderTap) is TxState.Confirmed)
            untilVerified(phone)
            val needsInviter = runCatching { phone.tap() }.exceptionOrNull()
            check(needsInviter is WattException.NeedsInviter) { "got $needsInviter" }
            val invite = founderWallet.invite(phoneAddress)
            check(invite.startsWith("watt-invite:")) { invite }
            val tap = phone.tap(invite = invite)
            val settled = phone.awaitSettled(tap)
            check(settled is TxState.Confirmed) { "tap ended $settled" }
            val event = awaitEvent(phoneEvents, 10_000, { phone.refresh() }) { it is WalletEvent.AttestationConfirmed }
            check((event as WalletEvent.AttestationConfirmed).day == 0uL) { "tapped on day ${event.day}" }
            val again = runCatching { phone.tap() }.exceptionOrNull()
            check(again is WattException.AlreadyAttested) { "a second tap: $again" }
            check(phone.status().attestedToday == AttestState.CONFIRMED)
        }

        test("the day-0 reward arrives after the day boundary as a proven balance") {
            val paid = awaitEvent(phoneEvents, 90_000, { phone.refresh() }) { it is WalletEvent.RewardPaid } as WalletEvent.RewardPaid
            check(paid.day == 0uL)
            reward = paid.amountUnits.toLong()
            check(reward > 0)
            val b = phone.balance()
            check(b.units.toLong() == reward) { "balance ${b.units} != reward $reward" }
            check(phone.history().any { it.kind is HistoryKind.Reward })
            // The founder's wallet sees its own (larger, not on probation) reward too.
            val founderPaid = awaitEvent(founderEvents, 30_000, { founderWallet.refresh() }) { it is WalletEvent.RewardPaid } as WalletEvent.RewardPaid
            val ratio = founderPaid.amountUnits.toDouble() / reward
            check(ratio > 1.99 && ratio < 2.01) { "founder weight 1.0 vs 0.5 on probation: ratio $ratio" }
        }

        test("pay with proven inclusion; the payee gets a PaymentReceived event") {
            val amount = reward / 4
            val hash = phone.pay(founder, amount)
            val state = phone.awaitSettled(hash)
            check(state is TxState.Confirmed) { "payment ended $state" }
            check(phone.balance().units.toLong() == reward - amount - 1_000) { "payer's balance" }
            val received = awaitEvent(founderEvents, 30_000, { founderWallet.refresh() }) { it is WalletEvent.PaymentReceived } as WalletEvent.PaymentReceived
            check(received.amountUnits.toLong() == amount) { "received ${received.amountUnits}, sent $amount" }
        }

        test("PlatformFacts is called from Rust and drives the power policy") {
            val before = founderFacts.calls.get()
            val plugged = founderWallet.powerDecision(1L shl 30, null)
            check(founderFacts.calls.get() == before + 1) { "the core asked the platform once" }
            check(plugged.maySeal) { plugged.reason }
            founderFacts.charging = false
            val onBattery = founderWallet.powerDecision(1L shl 30, 600_000L)
            check(!onBattery.maySeal && onBattery.reason.contains("not charging")) { onBattery.reason }
            check(onBattery.mayProve) { "proving is allowed at 80% near a deadline" }
        }

        test("storage: donate, seal in the background while charging, pre-commit, refuse on battery") {
            founderFacts.charging = true
            val donated = founderWallet.donate(1L shl 20, sectorBytes = 1L shl 20, layers = 12)
            check(donated.donatedBytes == (1uL shl 20))
            val submitted = mutableListOf<String>()
            var report = founderWallet.runBackground(10_000)
            submitted += report.submitted
            while (!report.idle) { report = founderWallet.runBackground(10_000); submitted += report.submitted }
            val sector = founderWallet.storageStatus().sectors.single()
            check(sector.sealed && sector.commR != null && sector.labelsDone == sector.labelsTotal) { "$sector" }
            // The run that finished the seal also did the ledger's part: the pre-commit, once.
            check(report.ledgerSkipped == null && submitted == listOf("pre-commit sector ${sector.number}")) { "$report; $submitted" }
            check(founderWallet.runBackground(1_000).submitted.isEmpty()) { "pre-committed twice" }
            check(founderWallet.storageStatus().sectors.single().phase == SectorPhase.SEALED)
            founderFacts.charging = false
            founderWallet.donate(2L shl 20, sectorBytes = 1L shl 20, layers = 12)
            val onBattery = founderWallet.runBackground(1_000)
            check(!onBattery.decision.maySeal && onBattery.labelsDone == 0uL) { "$onBattery" }
            check(founderWallet.donate(0, sectorBytes = 1L shl 20, layers = 12).usedBytes == 0uL)
        }

        test("the seed stays sealed: another device key cannot open it, the right one can") {
            phoneCollector.cancelAndJoin()
            phone.close()
            val stranger = WattWallet.open("$work/phone", genesis, MemoryKeyStore())
            val e = runCatching { stranger.exportWords() }.exceptionOrNull()
            check(e is WattException.KeyStore) { "got $e" }
            stranger.close()
            phone = WattWallet.open("$work/phone", genesis, phoneKeys)
            phoneCollector = launch { phone.events.collect { phoneEvents += it } }
            check(phone.address == phoneAddress)
            check(phone.exportWords().split(" ").size == 24)
        }

        test("the core's logs reach the app's LogSink") {
            phone.refresh()
            check(logLines.any { it.startsWith("DEBUG watt_client") && it.contains("refreshed") }) { "log lines: ${logLines.take(5)}" }
        }

        test("a status with verified ledger, nodes and no fork") {
            val s = phone.status()
            check(s.verifiedLedger != null && s.canSign && s.forkSlot == null)
            check(s.nodes.count { it.connected || it.goodAnswers > 0uL } >= 1) { "${s.nodes}" }
            check(s.nextDayStartsMs != null)
        }
        test("fork evidence reaches the app through the durable queue, and the wallet stops signing") {
            // Halt consensus (2 of 4 validators down), so the lying node's
            // conflicting chain, re-signed by the validators' own keys, names
            // the same slot as the honest one.
            for (i in 2..3) { nodes[i].destroyForcibly(); nodes[i].waitFor(5, TimeUnit.SECONDS) }
            var last = -1L
            var still = 0
            val haltBy = System.currentTimeMillis() + 30_000
            while (still < 3) {
                check(System.currentTimeMillis() < haltBy) { "consensus did not halt" }
                delay(700)
                val seq = runCatching { phone.refresh().verifiedLedger.toLong() }.getOrDefault(last)
                if (seq == last) still++ else { still = 0; last = seq }
            }
            val liarProc = ProcessBuilder("$binDir/watt-liar", "$work/net", "0", "$base", "conflicting-chain")
                .redirectError(File("$work/liar.log")).start()
            nodes += liarProc
            val liar = liarProc.inputStream.bufferedReader().readLine() ?: error("the lying node did not start")
            phone.addNode(jsonField(liar, "address"), jsonField(liar, "node_id"))
            val fork = awaitEvent(phoneEvents, 30_000, { phone.refresh() }) { it is WalletEvent.ForkDetected }
            val slot = (fork as WalletEvent.ForkDetected).slot
            val s = phone.status()
            check(s.forkSlot == slot && !s.canSign) { "status after the fork: $s" }
            val refused = runCatching { phone.pay(founder, UNITS_PER_WATT) }.exceptionOrNull()
            check(refused is WattException.ForkDetected) { "a payment after fork evidence: $refused" }
        }
        founderCollector.cancelAndJoin()
        phoneCollector.cancelAndJoin()
        phone.close()
        founderWallet.close()
    }
    nodes.forEach { it.destroyForcibly(); it.waitFor(5, TimeUnit.SECONDS) }
    setLogSink(null, LogLevel.ERROR)
    val failed = results.count { it.second != null }
    println("${results.size - failed} passed, $failed failed")
    if (failed == 0) work.deleteRecursively() else println("validator logs kept in $work")
    kotlin.system.exitProcess(if (failed == 0) 0 else 1)
}
