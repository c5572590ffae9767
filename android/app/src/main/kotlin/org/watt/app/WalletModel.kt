// The app's state holder: one WattWallet, refreshed while the app is open.
package org.watt.app

import android.app.Application
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import java.io.File
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.launch
import org.watt.sdk.HistoryItem
import org.watt.sdk.WalletStatus
import org.watt.sdk.WattException
import org.watt.sdk.WattWallet
import org.watt.sdk.android.AndroidPlatformFacts
import org.watt.sdk.android.KeystoreKeyStore

class WalletModel(app: Application) : AndroidViewModel(app) {
    private var wallet: WattWallet? = null
    val status = MutableStateFlow<WalletStatus?>(null)
    val history = MutableStateFlow<List<HistoryItem>>(emptyList())
    val message = MutableStateFlow<String?>(null)
    val words = MutableStateFlow<String?>(null)
    val storage = MutableStateFlow<org.watt.sdk.StorageState?>(null)
    private val _ready = MutableStateFlow(false)
    val ready: StateFlow<Boolean> = _ready

    init {
        viewModelScope.launch {
            val genesis = app.assets.open("genesis.json").bufferedReader().use { it.readText() }
            val w = WattWallet.open(File(app.filesDir, "watt").absolutePath, genesis, KeystoreKeyStore(app), AndroidPlatformFacts(app))
            wallet = w
            _ready.value = true
            launch { w.events.collect { reload() } }
            while (true) {
                runCatching { w.refresh() }
                reload()
                delay(5_000)
            }
        }
    }

    private suspend fun reload() {
        val w = wallet ?: return
        status.value = runCatching { w.status() }.getOrNull()
        history.value = runCatching { w.history(50) }.getOrDefault(emptyList())
        storage.value = runCatching { w.storageStatus() }.getOrNull()
    }

    private fun act(block: suspend (WattWallet) -> String?) {
        val w = wallet ?: return
        viewModelScope.launch {
            message.value = try { block(w) } catch (e: WattException) { e.message }
            reload()
        }
    }

    fun create() = act { w -> words.value = w.create(); null }
    fun restore(text: String) = act { w -> "Restored ${w.restore(text.trim())}" }
    fun tap(invite: String?) = act { w -> w.tap(invite?.ifBlank { null }); "Tapped: see you tomorrow" }
    fun pay(to: String, amount: String) = act { w ->
        val units = org.watt.sdk.parseAmount(amount).toLong()
        w.pay(to.trim(), units)
        "Payment sent"
    }
    fun donate(bytes: Long) = act { w -> w.donate(bytes); "Donation set" }
    fun dismissWords() { words.value = null }
}
