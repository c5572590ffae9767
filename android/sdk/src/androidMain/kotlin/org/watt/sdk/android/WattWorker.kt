// Background work under WorkManager's constraints (charging, unmetered,
// storage not low): keeps the wallet's verified view and pending
// transactions moving, and runs the storage work the core's power policy
// allows (sealing now; proofs when the ledger's storage operations land).
package org.watt.sdk.android

import android.content.Context
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.NetworkType
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.io.File
import java.util.concurrent.TimeUnit
import org.watt.sdk.WattWallet

class WattWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val genesis = inputData.getString(KEY_GENESIS_ASSET) ?: return Result.failure()
        val json = applicationContext.assets.open(genesis).bufferedReader().use { it.readText() }
        val dir = File(applicationContext.filesDir, "watt").absolutePath
        return WattWallet.open(dir, json, KeystoreKeyStore(applicationContext), AndroidPlatformFacts(applicationContext)).use { wallet ->
            runCatching { wallet.refresh() }
            // WorkManager gives a worker about 10 minutes; leave a margin.
            val report = wallet.runBackground(8 * 60_000L)
            if (report.idle || report.decision.maySeal) Result.success() else Result.retry()
        }
    }

    companion object {
        const val KEY_GENESIS_ASSET = "genesis_asset"

        /** Schedules the worker every 6 hours with the storage constraints. */
        fun schedule(context: Context, genesisAsset: String) {
            val constraints = Constraints.Builder()
                .setRequiresCharging(true)
                .setRequiredNetworkType(NetworkType.UNMETERED)
                .setRequiresStorageNotLow(true)
                .build()
            val request = PeriodicWorkRequestBuilder<WattWorker>(6, TimeUnit.HOURS)
                .setConstraints(constraints)
                .setInputData(androidx.work.workDataOf(KEY_GENESIS_ASSET to genesisAsset))
                .build()
            WorkManager.getInstance(context).enqueueUniquePeriodicWork("watt-background", ExistingPeriodicWorkPolicy.KEEP, request)
        }
    }
}
