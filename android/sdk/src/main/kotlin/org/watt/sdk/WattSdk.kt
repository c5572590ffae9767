// The idiomatic Kotlin face of the WATT core. Plain JVM Kotlin (no Android
// imports) so it compiles and is tested on a desktop JVM; Android glue lives
// in src/androidMain.
package org.watt.sdk

import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.isActive

/** 1 WATT in base units. */
const val UNITS_PER_WATT: Long = 10_000_000L

/**
 * A wallet on this device: the verifying light client, the keys (sealed by
 * [keyStore]) and the daily tap. Every suspend function runs on the core's
 * own threads; callers may use any dispatcher.
 */
class WattWallet private constructor(private val wallet: Wallet) : AutoCloseable {
    /**
     * Everything the core reports (new ledgers, payments, rewards, forks), from
     * the wallet's durable queue, oldest first. Each event is marked handled
     * only after the collector returns from it, so an app killed while handling
     * one sees it again on its next launch; none is ever dropped. Collect it
     * from one place at a time.
     */
    val events: Flow<WalletEvent> = flow {
        while (currentCoroutineContext().isActive) {
            val queued = wallet.waitEvent(30_000uL) ?: continue
            emit(queued.event)
            wallet.eventHandled(queued.id)
        }
    }

    /** The oldest unhandled event, if any, without waiting (see [eventHandled]). */
    fun nextEvent(): QueuedEvent? = wallet.nextEvent()
    /** Marks event [id] handled: it will not be handed out again. */
    fun eventHandled(id: ULong): Boolean = wallet.eventHandled(id)

    companion object {
        /** Opens (or creates) the wallet stored in [dataDir] for the network of [genesisJson]. */
        suspend fun open(
            dataDir: String,
            genesisJson: String,
            keyStore: SecretKeyStore,
            platform: PlatformFacts? = null,
            config: WalletConfig = defaultWalletConfig(),
        ): WattWallet = WattWallet(openWallet(dataDir, genesisJson, config, keyStore, platform))
    }

    /** A new wallet; returns the 24 recovery words to show once. */
    fun create(): String = wallet.createWallet()
    fun restore(words: String, replace: Boolean = false): String = wallet.restoreWallet(words, replace)
    fun exportWords(): String = wallet.exportWords()
    val address: String? get() = wallet.address()

    suspend fun refresh(): RefreshSummary = wallet.refresh()
    suspend fun balance(): ProvenBalance = wallet.balance()
    fun history(limit: Int = 50): List<HistoryItem> = wallet.history(limit.toUInt())
    suspend fun status(): WalletStatus = wallet.status()

    /** Today's tap; a new account's first tap carries the invite its inviter made (`watt-invite:...`). */
    suspend fun tap(invite: String? = null): String = wallet.attest(invite)
    /** An invite for [invitee]'s first tap, valid [validDays] days from today: text for a QR code or link. */
    suspend fun invite(invitee: String, validDays: Int = 3): String = wallet.createInvite(invitee, validDays.toUInt())
    suspend fun pay(to: String, amountUnits: Long, feeUnits: Long = 1_000L): String =
        wallet.pay(to, amountUnits.toULong(), feeUnits.toULong())
    suspend fun awaitSettled(txHash: String, timeoutMs: Long = 30_000L): TxState = wallet.waitSettled(txHash, timeoutMs.toULong())
    suspend fun setSecurityCircle(members: List<String>): String = wallet.setSecurityCircle(members)
    suspend fun setReferrer(referrer: String): String = wallet.setReferrer(referrer)

    fun addNode(address: String, nodeId: String) = wallet.addNode(address, nodeId)
    suspend fun removeNode(nodeId: String) = wallet.removeNode(nodeId)

    fun startSync(intervalMs: Long = 5_000L) = wallet.startSync(intervalMs.toULong())
    fun stopSync() = wallet.stopSync()
    /** Donates [bytes] of storage (sectors of 64 MiB × 12 layers by default). */
    fun donate(bytes: Long, sectorBytes: Long = 64L shl 20, layers: Int = 12): StorageState =
        wallet.donate(bytes.toULong(), sectorBytes.toULong(), layers.toUInt())
    fun storageStatus(): StorageState = wallet.storageStatus()
    /** The most urgent storage work the device allows, for at most [budgetMs]. */
    suspend fun runBackground(budgetMs: Long): BackgroundReport = wallet.runBackground(budgetMs.toULong())
    fun powerDecision(nextSectorBytes: Long, deadlineInMs: Long?): PowerDecision =
        wallet.powerDecision(nextSectorBytes.toULong(), deadlineInMs?.toULong())

    override fun close() {
        wallet.stopSync()
        wallet.close()
    }
}

/** "12.5 WATT" from base units, exactly. */
fun formatWatt(units: Long): String = formatAmount(units.toULong())
