// Android's answers to PlatformFacts: BatteryManager, PowerManager, StatFs,
// ConnectivityManager. Only reads; the core decides (power policy).
package org.watt.sdk.android

import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.net.ConnectivityManager
import android.net.NetworkCapabilities
import android.os.BatteryManager
import android.os.Build
import android.os.PowerManager
import android.os.StatFs
import org.watt.sdk.DeviceFacts
import org.watt.sdk.Network
import org.watt.sdk.PlatformFacts
import org.watt.sdk.Thermal

class AndroidPlatformFacts(context: Context) : PlatformFacts {
    private val app = context.applicationContext

    override fun current(): DeviceFacts {
        val battery = app.registerReceiver(null, IntentFilter(Intent.ACTION_BATTERY_CHANGED))
        val level = battery?.getIntExtra(BatteryManager.EXTRA_LEVEL, -1) ?: -1
        val scale = battery?.getIntExtra(BatteryManager.EXTRA_SCALE, 100) ?: 100
        val plugged = (battery?.getIntExtra(BatteryManager.EXTRA_PLUGGED, 0) ?: 0) != 0
        val power = app.getSystemService(PowerManager::class.java)
        val thermal = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.Q) {
            when (power.currentThermalStatus) {
                PowerManager.THERMAL_STATUS_NONE -> Thermal.NOMINAL
                PowerManager.THERMAL_STATUS_LIGHT, PowerManager.THERMAL_STATUS_MODERATE -> Thermal.FAIR
                PowerManager.THERMAL_STATUS_SEVERE -> Thermal.SERIOUS
                else -> Thermal.CRITICAL
            }
        } else Thermal.NOMINAL
        val stat = StatFs(app.filesDir.absolutePath)
        return DeviceFacts(
            batteryPercent = (if (level >= 0 && scale > 0) level * 100 / scale else 0).coerceIn(0, 100).toUByte(),
            charging = plugged,
            thermal = thermal,
            lowPowerMode = power.isPowerSaveMode,
            network = network(),
            freeBytes = stat.availableBytes.toULong(),
            totalBytes = stat.totalBytes.toULong(),
            screenOn = power.isInteractive,
        )
    }

    private fun network(): Network {
        val cm = app.getSystemService(ConnectivityManager::class.java)
        val caps = cm.getNetworkCapabilities(cm.activeNetwork) ?: return Network.NONE
        if (!caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET)) return Network.NONE
        return if (caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)) Network.UNMETERED else Network.METERED
    }
}
