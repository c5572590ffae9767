// The WATT app: onboarding, the daily tap with its countdown, balance and
// history, pay by address, storage donation, and the status screen.
package org.watt.app

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.foundation.layout.*
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.*
import androidx.compose.runtime.*
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.viewmodel.compose.viewModel
import kotlinx.coroutines.delay
import org.watt.sdk.AttestState
import org.watt.sdk.formatWatt

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        ReminderWorker.schedule(this)
        setContent { MaterialTheme { App() } }
    }
}

@Composable
fun App(model: WalletModel = viewModel()) {
    val status by model.status.collectAsState()
    val words by model.words.collectAsState()
    val message by model.message.collectAsState()
    var tab by remember { mutableIntStateOf(0) }
    Scaffold(bottomBar = {
        NavigationBar {
            listOf("Tap", "Wallet", "Storage", "Status").forEachIndexed { i, label ->
                NavigationBarItem(selected = tab == i, onClick = { tab = i }, icon = {}, label = { Text(label) })
            }
        }
    }) { padding ->
        Column(Modifier.padding(padding).padding(16.dp).fillMaxSize()) {
            message?.let { Text(it, color = MaterialTheme.colorScheme.secondary) }
            when {
                words != null -> Words(words!!, model::dismissWords)
                status?.account == null -> Onboarding(model)
                tab == 0 -> TapScreen(model)
                tab == 1 -> WalletScreen(model)
                tab == 2 -> StorageScreen(model)
                else -> StatusScreen(model)
            }
        }
    }
}

@Composable
fun Onboarding(model: WalletModel) {
    var restoring by remember { mutableStateOf("") }
    Text("Welcome to WATT", style = MaterialTheme.typography.headlineMedium)
    Spacer(Modifier.height(16.dp))
    Button(onClick = model::create) { Text("Create a wallet") }
    Spacer(Modifier.height(24.dp))
    OutlinedTextField(restoring, { restoring = it }, label = { Text("Or restore from 24 words") }, modifier = Modifier.fillMaxWidth())
    Button(onClick = { model.restore(restoring) }, enabled = restoring.split(" ").size == 24) { Text("Restore") }
}

@Composable
fun Words(words: String, done: () -> Unit) {
    Text("Write these 24 words down. They are the only way back into your wallet.")
    words.split(" ").chunked(3).forEachIndexed { row, ws -> Text(ws.mapIndexed { i, w -> "${row * 3 + i + 1}. $w" }.joinToString("   ")) }
    Button(onClick = done) { Text("I wrote them down") }
}

@Composable
fun TapScreen(model: WalletModel) {
    val status by model.status.collectAsState()
    var invite by remember { mutableStateOf("") }
    var now by remember { mutableLongStateOf(System.currentTimeMillis()) }
    LaunchedEffect(Unit) { while (true) { now = System.currentTimeMillis(); delay(1_000) } }
    val s = status ?: return
    Text("Day ${s.day ?: "-"}", style = MaterialTheme.typography.headlineSmall)
    when (s.attestedToday) {
        AttestState.CONFIRMED -> Text("Tapped today.")
        AttestState.PENDING -> Text("Tap sent; waiting for the network…")
        AttestState.NOT_YET -> {
            if (s.balanceUnits == null) OutlinedTextField(invite, { invite = it }, label = { Text("Invite (first tap)") })
            Button(onClick = { model.tap(invite) }, enabled = s.canSign, modifier = Modifier.size(160.dp)) { Text("TAP") }
        }
    }
    s.nextDayStartsMs?.let { next ->
        val left = ((next.toLong() - now) / 1000).coerceAtLeast(0)
        Text("Next day in %02d:%02d:%02d".format(left / 3600, left / 60 % 60, left % 60))
    }
}

@Composable
fun WalletScreen(model: WalletModel) {
    val status by model.status.collectAsState()
    val history by model.history.collectAsState()
    var to by remember { mutableStateOf("") }
    var amount by remember { mutableStateOf("") }
    Text(status?.balanceUnits?.let { formatWatt(it.toLong()) } ?: "—", style = MaterialTheme.typography.headlineMedium)
    status?.balanceLedger?.let { Text("proven at ledger $it") }
    OutlinedTextField(to, { to = it }, label = { Text("Pay to (W…)") }, modifier = Modifier.fillMaxWidth())
    OutlinedTextField(amount, { amount = it }, label = { Text("Amount (WATT)") })
    Button(onClick = { model.pay(to, amount) }, enabled = status?.canSign == true) { Text("Pay") }
    LazyColumn { items(history) { Text("${it.kind}: ${it.state}") } }
}

@Composable
fun StorageScreen(model: WalletModel) {
    val storage by model.storage.collectAsState()
    var gib by remember { mutableFloatStateOf(((storage?.donatedBytes ?: 0uL).toLong() shr 30).toFloat()) }
    Text("Donate idle storage", style = MaterialTheme.typography.headlineSmall)
    Slider(value = gib, onValueChange = { gib = it }, onValueChangeFinished = { model.donate(gib.toLong() shl 30) }, valueRange = 0f..64f, steps = 63)
    Text("${gib.toInt()} GiB")
    storage?.sectors?.forEach { s ->
        val pct = if (s.labelsTotal > 0uL) (100uL * s.labelsDone / s.labelsTotal).toInt() else 0
        Text("Sector ${s.number}: ${if (s.sealed) "sealed" else "sealing $pct%"}")
        if (!s.sealed) LinearProgressIndicator(progress = { pct / 100f }, modifier = Modifier.fillMaxWidth())
    }
    Text("Sealing runs only while charging, cool and with room to spare.")
}

@Composable
fun StatusScreen(model: WalletModel) {
    val status by model.status.collectAsState()
    val s = status ?: return
    if (s.forkSlot != null) Text("FORK DETECTED at slot ${s.forkSlot}: signing is stopped.", color = MaterialTheme.colorScheme.error)
    Text("Verified ledger ${s.verifiedLedger ?: "-"}${if (s.stale) " (stale)" else ""}")
    Text("Pending: ${s.pending.size}")
    LazyColumn {
        items(s.nodes) { n -> Text("${n.nodeId.take(8)}… ${n.address} ${if (n.demoted) "demoted" else if (n.connected) "connected" else ""}") }
    }
}
